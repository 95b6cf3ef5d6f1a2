//! The request schema as shipped in a bundle, and turning a JSON request into the
//! values the table evaluates: unknown attributes and values outside the schema are
//! refused with the same words `check` uses.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::value::Scalar;
use crate::check::schema::{Schema, Ty};
use crate::diag::suggest::did_you_mean;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    String,
    Enum,
    Int,
    Number,
    Bool,
    Duration,
    Money,
    Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// for an enum: the capabilities a model needs to serve each value
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<(String, Vec<String>)>,
}

/// The attributes a request may carry, in slot order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RequestSchema {
    pub attributes: Vec<AttrSpec>,
}

/// A request: one optional value per schema slot.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    pub values: Vec<Option<Scalar>>,
}

/// Why a request was refused; `attribute` is `None` for the request as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestError {
    pub attribute: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl RequestSchema {
    /// The capabilities a model needs to serve a request with these values: the
    /// `requires` of each enum value the request carries.
    pub fn required_capabilities(&self, values: &[Option<Scalar>]) -> Vec<&str> {
        let mut out = Vec::new();
        for (spec, value) in self.attributes.iter().zip(values) {
            if let Some(Scalar::Str(v)) = value {
                if let Some((_, caps)) = spec.requires.iter().find(|(value, _)| value == v) {
                    out.extend(caps.iter().map(String::as_str));
                }
            }
        }
        out
    }

    pub fn from_check(schema: &Schema) -> RequestSchema {
        let attributes = schema
            .attrs
            .iter()
            .map(|a| {
                let (ty, values) = match &a.ty {
                    Ty::String => (AttrType::String, Vec::new()),
                    Ty::Enum(v) => (AttrType::Enum, v.clone()),
                    Ty::Int => (AttrType::Int, Vec::new()),
                    Ty::Number => (AttrType::Number, Vec::new()),
                    Ty::Bool => (AttrType::Bool, Vec::new()),
                    Ty::Duration => (AttrType::Duration, Vec::new()),
                    Ty::Money => (AttrType::Money, Vec::new()),
                    Ty::Percent => (AttrType::Percent, Vec::new()),
                };
                AttrSpec {
                    name: a.name.clone(),
                    ty,
                    values,
                    min: a.min,
                    max: a.max,
                    requires: a
                        .requires
                        .iter()
                        .filter(|(_, caps)| !caps.is_empty())
                        .cloned()
                        .collect(),
                }
            })
            .collect();
        RequestSchema { attributes }
    }

    pub fn slot(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a.name == name)
    }

    /// Reads a JSON object; nested objects stand for dotted names
    /// (`{"tenant": {"tier": "gold"}}` is `tenant.tier`).
    pub fn parse(&self, json: &Json) -> Result<Request, RequestError> {
        let Json::Object(map) = json else {
            return Err(RequestError {
                attribute: None,
                message: "a request must be a JSON object of attributes".into(),
                help: Some(
                    "e.g. {\"task_type\": \"code_generation\", \"estimated_tokens\": 1200}".into(),
                ),
            });
        };
        let mut request = Request {
            values: vec![None; self.attributes.len()],
        };
        let mut stack: Vec<(String, &serde_json::Map<String, Json>)> = vec![(String::new(), map)];
        while let Some((prefix, map)) = stack.pop() {
            for (key, value) in map {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                let slot = self.slot(&name);
                match (slot, value) {
                    (None, Json::Object(inner))
                        if self
                            .attributes
                            .iter()
                            .any(|a| a.name.starts_with(&format!("{name}."))) =>
                    {
                        stack.push((name, inner));
                    }
                    (None, _) => {
                        return Err(RequestError {
                            message: format!("unknown request attribute `{name}`"),
                            help: crate::diag::suggest::did_you_mean_attribute(
                                &name,
                                self.attributes.iter().map(|a| a.name.as_str()),
                            ),
                            attribute: Some(name),
                        })
                    }
                    (Some(_), Json::Null) => {}
                    (Some(i), v) => request.values[i] = Some(self.value(&self.attributes[i], v)?),
                }
            }
        }
        Ok(request)
    }

    fn value(&self, spec: &AttrSpec, v: &Json) -> Result<Scalar, RequestError> {
        let err = |message: String, help: Option<String>| RequestError {
            attribute: Some(spec.name.clone()),
            message,
            help,
        };
        let wrong = |expected: &str| {
            err(
                format!("`{}` must be {expected}, not {}", spec.name, json_kind(v)),
                None,
            )
        };
        let number = |text_parse: fn(&str) -> Option<f64>,
                      expected: &str|
         -> Result<f64, RequestError> {
            match v {
                Json::Number(n) => n.as_f64().ok_or_else(|| wrong(expected)),
                Json::String(s) => text_parse(s)
                    .ok_or_else(|| err(format!("`{}`: {s:?} is not {expected}", spec.name), None)),
                _ => Err(wrong(expected)),
            }
        };
        let value = match spec.ty {
            AttrType::String => match v {
                Json::String(s) => Scalar::Str(s.clone()),
                _ => return Err(wrong("a string")),
            },
            AttrType::Enum => match v {
                Json::String(s) if spec.values.contains(s) => Scalar::Str(s.clone()),
                Json::String(s) => {
                    let help =
                        did_you_mean(s, spec.values.iter().map(String::as_str)).or_else(|| {
                            Some(format!(
                                "`{}` is one of {}",
                                spec.name,
                                spec.values
                                    .iter()
                                    .map(|v| format!("`{v}`"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        });
                    return Err(err(
                        format!("`{s}` is not a value of `{}`", spec.name),
                        help,
                    ));
                }
                _ => return Err(wrong("a string")),
            },
            AttrType::Int => match v.as_f64() {
                Some(n) if v.is_number() && n.fract() == 0.0 => Scalar::Num(n),
                _ => return Err(wrong("a whole number")),
            },
            AttrType::Number => Scalar::Num(number(|_| None, "a number")?),
            AttrType::Bool => match v {
                Json::Bool(b) => Scalar::Bool(*b),
                _ => return Err(wrong("`true` or `false`")),
            },
            AttrType::Duration => Scalar::Num(number(
                |s| crate::syntax::parse_duration(s).ok().map(|d| d.ms as f64),
                "a duration (milliseconds, or a string such as \"500ms\")",
            )?),
            AttrType::Money => Scalar::Num(number(
                |s| crate::syntax::parse_money(s).ok(),
                "an amount (dollars, or a string such as \"$0.10\")",
            )?),
            AttrType::Percent => Scalar::Num(number(
                |s| s.strip_suffix('%').and_then(|n| n.trim().parse().ok()),
                "a percentage (points, or a string such as \"5%\")",
            )?),
        };
        if let Scalar::Num(n) = value {
            let below = spec.min.is_some_and(|m| n < m);
            let above = spec.max.is_some_and(|m| n > m);
            if below || above {
                let range = format!(
                    "{} to {}",
                    spec.min.map_or("-∞".into(), |m| m.to_string()),
                    spec.max.map_or("∞".into(), |m| m.to_string())
                );
                return Err(err(
                    format!("`{}` = {n} is outside {range}", spec.name),
                    None,
                ));
            }
        }
        Ok(value)
    }

    /// A request as JSON, for examples: attributes in schema order, absent ones left out.
    pub fn to_json(&self, request: &Request) -> Json {
        let mut map = serde_json::Map::new();
        for (spec, value) in self.attributes.iter().zip(&request.values) {
            let Some(v) = value else { continue };
            let json = match (spec.ty, v) {
                (AttrType::Duration, Scalar::Num(n)) => Json::String(super::domain::format_number(
                    *n,
                    super::domain::Unit::Duration,
                )),
                (AttrType::Int, Scalar::Num(n)) => Json::from(*n as i64),
                (_, Scalar::Num(n)) => Json::from(*n),
                (_, Scalar::Str(s)) => Json::String(s.clone()),
                (_, Scalar::Bool(b)) => Json::Bool(*b),
            };
            map.insert(spec.name.clone(), json);
        }
        Json::Object(map)
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}
