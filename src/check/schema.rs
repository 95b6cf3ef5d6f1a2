//! The request schema conditions are checked against: the built-in attributes, replaced
//! or extended by the policy's `request:` declarations.

use crate::policy::{AttrType, Attribute, Policy};
use crate::source::Span;

/// The type of one request attribute, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Enum(Vec<String>),
    Int,
    Number,
    Bool,
    Duration,
    Money,
    Percent,
}

impl Ty {
    pub fn describe(&self) -> &'static str {
        match self {
            Ty::String => "a string",
            Ty::Enum(_) => "one of a fixed set of strings",
            Ty::Int => "a whole number",
            Ty::Number => "a number",
            Ty::Bool => "a boolean",
            Ty::Duration => "a duration",
            Ty::Money => "an amount of money",
            Ty::Percent => "a percentage",
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Ty::Int | Ty::Number | Ty::Duration | Ty::Money | Ty::Percent
        )
    }
}

#[derive(Debug, Clone)]
pub struct AttrInfo {
    pub name: String,
    pub ty: Ty,
    /// enum value → capabilities it requires
    pub requires: Vec<(String, Vec<String>)>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// where it is declared; `None` for built-ins
    pub span: Option<Span>,
}

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub attrs: Vec<AttrInfo>,
}

/// Task types known without declaration, with the capabilities each requires.
pub const BUILTIN_TASK_TYPES: &[(&str, &[&str])] = &[
    ("general", &[]),
    ("simple_qa", &["simple_qa"]),
    ("classification", &["classification"]),
    ("extraction", &["extraction"]),
    ("summarization", &["summarization"]),
    ("content_creation", &["content_writing"]),
    ("code_generation", &["code_generation"]),
    ("critical_analysis", &["analysis"]),
];

impl Schema {
    pub fn builtin() -> Schema {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Schema {
            attrs: vec![
                AttrInfo {
                    name: "task_complexity".into(),
                    ty: Ty::Enum(s(&["simple", "moderate", "complex"])),
                    requires: Vec::new(),
                    min: None,
                    max: None,
                    span: None,
                },
                AttrInfo {
                    name: "task_type".into(),
                    ty: Ty::Enum(
                        BUILTIN_TASK_TYPES
                            .iter()
                            .map(|(t, _)| t.to_string())
                            .collect(),
                    ),
                    requires: BUILTIN_TASK_TYPES
                        .iter()
                        .map(|(t, caps)| (t.to_string(), s(caps)))
                        .collect(),
                    min: None,
                    max: None,
                    span: None,
                },
                AttrInfo {
                    name: "session_id".into(),
                    ty: Ty::String,
                    requires: Vec::new(),
                    min: None,
                    max: None,
                    span: None,
                },
                AttrInfo {
                    name: "estimated_tokens".into(),
                    ty: Ty::Int,
                    requires: Vec::new(),
                    min: Some(0.0),
                    max: None,
                    span: None,
                },
            ],
        }
    }

    /// Built-ins overridden by the policy's declarations.
    pub fn for_policy(policy: &Policy) -> Schema {
        let mut schema = Schema::builtin();
        for attr in &policy.request {
            let info = declared(attr);
            match schema.attrs.iter_mut().find(|a| a.name == info.name) {
                Some(slot) => *slot = info,
                None => schema.attrs.push(info),
            }
        }
        schema
    }

    pub fn get(&self, name: &str) -> Option<&AttrInfo> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.attrs.iter().map(|a| a.name.as_str())
    }
}

fn declared(attr: &Attribute) -> AttrInfo {
    let ty = match &attr.ty.value {
        AttrType::String => Ty::String,
        AttrType::Enum(values) => Ty::Enum(values.iter().map(|v| v.value.clone()).collect()),
        AttrType::Int => Ty::Int,
        AttrType::Number => Ty::Number,
        AttrType::Bool => Ty::Bool,
        AttrType::Duration => Ty::Duration,
        AttrType::Money => Ty::Money,
        AttrType::Percent => Ty::Percent,
    };
    AttrInfo {
        name: attr.name.value.clone(),
        ty,
        requires: attr
            .requires
            .iter()
            .map(|(v, caps)| {
                (
                    v.value.clone(),
                    caps.iter().map(|c| c.value.clone()).collect(),
                )
            })
            .collect(),
        min: attr.min.as_ref().map(|m| m.value),
        max: attr.max.as_ref().map(|m| m.value),
        span: Some(attr.name.span),
    }
}
