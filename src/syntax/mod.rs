//! Stage 2: the rule language. The pest grammar in `grammar/rulec.pest` parses routing
//! conditions and every typed value of a policy; `print` turns an AST back into text.

pub mod ast;
pub mod parse;
pub mod print;

pub use ast::{CmpOp, Cron, Duration, Expr, Literal, Operand, Rate, Value};
pub use parse::{
    parse_condition, parse_cron, parse_duration, parse_interval, parse_money, parse_rate,
    parse_threshold, SyntaxError,
};
