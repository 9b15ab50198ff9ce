//! The audience expression language: a lexer, a recursive-descent parser and a pretty-printer.
//!
//! ```text
//! expr    := and ("OR" and)*
//! and     := unary ("AND" unary)*
//! unary   := "NOT" unary | primary
//! primary := "(" expr ")" | "EXISTS" name | "in_audience" "(" string ")"
//!          | field (op literal | "BETWEEN" literal "AND" literal | ["NOT"] "IN" "(" literal ("," literal)* ")")?
//! field   := name | ("points" | "tier") "(" string ")"       a loyalty program's points / tier
//! op      := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! literal := number | "-" number | string | TRUE | FALSE | NOW [("+" | "-") duration]
//! duration:= number ("s" | "m" | "h" | "d" | "w")        e.g. 30d
//! ```
//! Keywords are case-insensitive. A bare `name` means `name = TRUE` (a bool tag). Dates are
//! written as strings (`"2026-01-05"` or RFC 3339) or relative to now (`now - 30d`).
//!
//! ```
//! use userops::tags::expr::parse;
//! let e = parse(r#"(tier IN ("gold", "silver") OR vip) AND NOT churned AND age BETWEEN 40 AND 60"#).unwrap();
//! assert_eq!(parse(&e.to_string()).unwrap(), e);
//! let err = parse("age >").unwrap_err();
//! assert_eq!(err.position, 5);
//! ```

use std::fmt;

pub use crate::error::expr::ExprError;

impl ExprError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        ExprError {
            position,
            message: message.into(),
            suggestion: None,
        }
    }

    /// An unknown name, with the nearest of `known` as a suggestion.
    pub(crate) fn unknown<'a>(
        position: usize,
        what: &str,
        name: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        ExprError {
            position,
            message: format!("unknown {what} `{name}`"),
            suggestion: nearest(name, known),
        }
    }
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .min()
        .map(|(_, k)| k.to_owned())
}

/// A name in an expression, with where it was written (ignored by equality).
#[derive(Debug, Clone, Eq)]
pub struct Name {
    /// The name as written (a tag, attribute or saved audience).
    pub name: String,
    /// 0-based character position.
    pub pos: usize,
}

impl PartialEq for Name {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
    }
}

/// A literal value, with where it was written (ignored by equality).
#[derive(Debug, Clone)]
pub struct Lit {
    /// The value as written.
    pub value: Literal,
    /// 0-based character position.
    pub pos: usize,
}

impl PartialEq for Lit {
    fn eq(&self, o: &Self) -> bool {
        self.value == o.value
    }
}

/// A literal's value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// A number literal, e.g. `30` or `2.5`.
    Number(f64),
    /// A string (an enum value or a date).
    Str(String),
    /// TRUE / FALSE.
    Bool(bool),
    /// `now` plus an offset in seconds (negative for `now - 30d`).
    Now(i64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A parsed audience expression.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expr {
    /// All of these (two or more). A chain `a AND b AND …` is one node, however long, so no
    /// walk of a parsed expression recurses deeper than its parentheses.
    And(Vec<Expr>),
    /// Any of these (two or more), one node per chain like [`Expr::And`].
    Or(Vec<Expr>),
    /// Every known user but these.
    Not(Box<Expr>),
    /// `field op literal`.
    Compare {
        /// The tag or attribute.
        field: Name,
        /// `=`, `!=`, `<`, `<=`, `>` or `>=`.
        op: CmpOp,
        /// The right-hand side.
        value: Lit,
    },
    /// `field BETWEEN lo AND hi` (inclusive).
    Between {
        /// The tag or attribute.
        field: Name,
        /// Lower bound.
        lo: Lit,
        /// Upper bound.
        hi: Lit,
    },
    /// `field IN (a, b, ...)`.
    In {
        /// The tag or attribute.
        field: Name,
        /// The listed values: a user matches when they hold any of them.
        values: Vec<Lit>,
    },
    /// `EXISTS field`: the user has a value.
    Exists(Name),
    /// `in_audience("name")`: a member of a saved audience (as last evaluated).
    InAudience(Name),
    /// A bare bool tag: `vip` means `vip = TRUE`.
    Truthy(Name),
}

impl Expr {
    /// Every field and audience name the expression mentions.
    pub fn names(&self, fields: &mut Vec<String>, audiences: &mut Vec<String>) {
        match self {
            Expr::And(terms) | Expr::Or(terms) => {
                for t in terms {
                    t.names(fields, audiences);
                }
            }
            Expr::Not(a) => a.names(fields, audiences),
            Expr::Compare { field, .. }
            | Expr::Between { field, .. }
            | Expr::In { field, .. }
            | Expr::Exists(field)
            | Expr::Truthy(field) => fields.push(field.name.clone()),
            Expr::InAudience(n) => audiences.push(n.name.clone()),
        }
    }

    /// Whether a literal refers to the evaluation time (`now - 30d`): the answer then changes
    /// as time moves even when no value does.
    pub fn uses_now(&self) -> bool {
        let now = |l: &Lit| matches!(l.value, Literal::Now(_));
        match self {
            Expr::And(terms) | Expr::Or(terms) => terms.iter().any(Expr::uses_now),
            Expr::Not(a) => a.uses_now(),
            Expr::Compare { value, .. } => now(value),
            Expr::Between { lo, hi, .. } => now(lo) || now(hi),
            Expr::In { values, .. } => values.iter().any(now),
            Expr::Exists(_) | Expr::Truthy(_) | Expr::InAudience(_) => false,
        }
    }
}

fn write_duration(f: &mut fmt::Formatter<'_>, secs: i64) -> fmt::Result {
    let (sign, abs) = if secs < 0 {
        ("-", secs.unsigned_abs())
    } else {
        ("+", secs as u64)
    };
    for (unit, n) in [("w", 604_800u64), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if abs % n == 0 {
            return write!(f, " {sign} {}{unit}", abs / n);
        }
    }
    write!(f, " {sign} {abs}s")
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Number(x) => write!(f, "{x:?}"),
            Literal::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Literal::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            Literal::Now(0) => f.write_str("now"),
            Literal::Now(s) => {
                f.write_str("now")?;
                write_duration(f, *s)
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paren = |f: &mut fmt::Formatter<'_>, e: &Expr, wrap: bool| {
            if wrap {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        };
        match self {
            // An operand of the same kind only comes from a tree built by hand (the parser
            // flattens chains); it keeps its parentheses so the text parses back to it.
            Expr::And(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    paren(f, t, matches!(t, Expr::Or(..) | Expr::And(..)))?;
                }
                Ok(())
            }
            Expr::Or(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    paren(f, t, matches!(t, Expr::Or(..)))?;
                }
                Ok(())
            }
            Expr::Not(a) => {
                f.write_str("NOT ")?;
                paren(f, a, matches!(**a, Expr::Or(..) | Expr::And(..)))
            }
            Expr::Compare { field, op, value } => {
                write!(f, "{} {} {}", field.name, op.symbol(), value.value)
            }
            Expr::Between { field, lo, hi } => {
                write!(f, "{} BETWEEN {} AND {}", field.name, lo.value, hi.value)
            }
            Expr::In { field, values } => {
                write!(f, "{} IN (", field.name)?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v.value)?;
                }
                f.write_str(")")
            }
            Expr::Exists(n) => write!(f, "EXISTS {}", n.name),
            Expr::InAudience(n) => write!(f, "in_audience({})", Literal::Str(n.name.clone())),
            Expr::Truthy(n) => f.write_str(&n.name),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Dur(i64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    End,
}

/// Functions naming a loyalty program's index column: `points("brand-a")`, `tier("brand-a")`
/// (the loyalty module names and feeds those columns). A tag may still be called `points` or
/// `tier`.
pub const PROGRAM_COLUMNS: [&str; 2] = ["points", "tier"];

/// Words that cannot name a tag.
pub const KEYWORDS: [&str; 10] = [
    "and",
    "or",
    "not",
    "between",
    "in",
    "exists",
    "true",
    "false",
    "now",
    "in_audience",
];

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '+' => {
                i += 1;
                Tok::Plus
            }
            '-' => {
                i += 1;
                Tok::Minus
            }
            '=' => {
                i += if chars.get(i + 1) == Some(&'=') { 2 } else { 1 };
                Tok::Op(CmpOp::Eq)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op(CmpOp::Ne)
            }
            '<' => match chars.get(i + 1) {
                Some('=') => {
                    i += 2;
                    Tok::Op(CmpOp::Le)
                }
                Some('>') => {
                    i += 2;
                    Tok::Op(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(CmpOp::Lt)
                }
            },
            '>' => {
                if chars.get(i + 1) == Some(&'=') {
                    i += 2;
                    Tok::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Tok::Op(CmpOp::Gt)
                }
            }
            '"' | '\'' => {
                let (tok, next) = lex_string(&chars, start)?;
                i = next;
                tok
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let (tok, next) = lex_number(&chars, start)?;
                i = next;
                tok
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Tok::Ident(chars[start..i].iter().collect())
            }
            other => {
                return Err(ExprError::new(
                    start,
                    format!("unexpected character `{other}`"),
                ))
            }
        };
        out.push((tok, start));
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

/// The string literal opening at `start` (its quote), and where it ends.
fn lex_string(chars: &[char], start: usize) -> Result<(Tok, usize), ExprError> {
    let quote = chars[start];
    let mut i = start + 1;
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None => return Err(ExprError::new(start, "unterminated string")),
            Some('\\') => {
                match chars.get(i + 1) {
                    Some(e @ ('"' | '\'' | '\\')) => s.push(*e),
                    _ => return Err(ExprError::new(i, "unknown escape (use \\\" or \\\\)")),
                }
                i += 2;
            }
            Some(q) if *q == quote => {
                i += 1;
                break;
            }
            Some(ch) => {
                s.push(*ch);
                i += 1;
            }
        }
    }
    Ok((Tok::Str(s), i))
}

/// The number or duration (`30d`) starting at `start`, and where it ends.
fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), ExprError> {
    let mut i = start;
    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
        i += 1;
    }
    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
        let mut j = i + 1;
        if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
            j += 1;
        }
        if j < chars.len() && chars[j].is_ascii_digit() {
            i = j;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    let text: String = chars[start..i].iter().collect();
    let unit = chars.get(i).copied().filter(|u| u.is_ascii_alphabetic());
    let tok = if let Some(u) = unit {
        let secs = match u {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => {
                return Err(ExprError::new(
                    i,
                    format!("unknown duration unit `{u}` (use s, m, h, d or w)"),
                ))
            }
        };
        if chars
            .get(i + 1)
            .is_some_and(|c| c.is_alphanumeric() || *c == '_')
        {
            return Err(ExprError::new(start, "a name cannot start with a digit"));
        }
        i += 1;
        let n: i64 = text
            .parse()
            .map_err(|_| ExprError::new(start, "a duration is a whole number, e.g. 30d"))?;
        Tok::Dur(
            n.checked_mul(secs)
                .ok_or_else(|| ExprError::new(start, "duration too long"))?,
        )
    } else {
        let x: f64 = text
            .parse()
            .map_err(|_| ExprError::new(start, format!("`{text}` is not a number")))?;
        if !x.is_finite() {
            return Err(ExprError::new(start, "number out of range"));
        }
        Tok::Num(x)
    };
    Ok((tok, i))
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
}

/// Deeper nesting than this is refused, so that no input can overflow the stack.
const MAX_DEPTH: usize = 200;

/// The chain's only term, or the chain (a parenthesized chain stays an operand of its own, so
/// the text prints back as it was written).
fn one_or(mut terms: Vec<Expr>, chain: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        chain(terms)
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at.min(self.toks.len() - 1)].0
    }
    fn pos(&self) -> usize {
        self.toks[self.at.min(self.toks.len() - 1)].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.at.min(self.toks.len() - 1)].clone();
        self.at += 1;
        t
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
    fn expect_kw(&mut self, kw: &str, what: &str) -> Result<(), ExprError> {
        if self.keyword(kw) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }
    fn unexpected(&self, expected: &str) -> ExprError {
        let found = match self.peek() {
            Tok::End => "the end".to_owned(),
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("{:?}", s),
            Tok::Num(x) => format!("`{x}`"),
            Tok::Dur(_) => "a duration".into(),
            Tok::Op(o) => format!("`{}`", o.symbol()),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
        };
        let mut e = ExprError::new(self.pos(), format!("expected {expected}, found {found}"));
        if let Tok::Ident(s) = self.peek() {
            e.suggestion = nearest(s, KEYWORDS.iter().copied()).map(|k| k.to_uppercase());
        }
        e
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::new(self.pos(), "expression nested too deeply"));
        }
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            self.at += 1;
            terms.push(self.and()?);
        }
        self.depth -= 1;
        Ok(one_or(terms, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            self.at += 1;
            terms.push(self.unary()?);
        }
        Ok(one_or(terms, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.keyword("not") {
            self.at += 1;
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ExprError::new(self.pos(), "expression nested too deeply"));
            }
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn name(&mut self, what: &str) -> Result<Name, ExprError> {
        match self.peek().clone() {
            Tok::Ident(s) if !KEYWORDS.iter().any(|k| s.eq_ignore_ascii_case(k)) => {
                let pos = self.pos();
                self.at += 1;
                if PROGRAM_COLUMNS.contains(&s.as_str()) && *self.peek() == Tok::LParen {
                    return self.program_column(s, pos);
                }
                Ok(Name { name: s, pos })
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// `points("program")` / `tier("program")`: a loyalty column, named as it is printed.
    fn program_column(&mut self, f: String, pos: usize) -> Result<Name, ExprError> {
        self.at += 1;
        let program = match self.bump() {
            (Tok::Str(s), _) => s,
            _ => {
                self.at -= 1;
                return Err(self.unexpected(&format!("a program id in quotes after {f}(")));
            }
        };
        if *self.peek() != Tok::RParen {
            return Err(self.unexpected("`)`"));
        }
        self.at += 1;
        Ok(Name {
            name: format!("{f}({})", Literal::Str(program)),
            pos,
        })
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        if *self.peek() == Tok::LParen {
            self.at += 1;
            let e = self.or()?;
            if *self.peek() != Tok::RParen {
                return Err(self.unexpected("`)`"));
            }
            self.at += 1;
            return Ok(e);
        }
        if self.keyword("exists") {
            self.at += 1;
            return Ok(Expr::Exists(self.name("a tag name after EXISTS")?));
        }
        if self.keyword("in_audience") {
            self.at += 1;
            if *self.peek() != Tok::LParen {
                return Err(self.unexpected("`(` after in_audience"));
            }
            self.at += 1;
            let (tok, pos) = self.bump();
            let name = match tok {
                Tok::Str(s) => Name { name: s, pos },
                _ => {
                    self.at -= 1;
                    return Err(self.unexpected("an audience name in quotes"));
                }
            };
            if *self.peek() != Tok::RParen {
                return Err(self.unexpected("`)`"));
            }
            self.at += 1;
            return Ok(Expr::InAudience(name));
        }
        let field = self.name("a tag name, NOT, EXISTS, in_audience or `(`")?;
        if let Tok::Op(op) = *self.peek() {
            self.at += 1;
            let value = self.literal()?;
            return Ok(Expr::Compare { field, op, value });
        }
        if self.keyword("between") {
            self.at += 1;
            let lo = self.literal()?;
            self.expect_kw("and", "AND between the bounds of BETWEEN")?;
            let hi = self.literal()?;
            return Ok(Expr::Between { field, lo, hi });
        }
        let negated = if self.keyword("not") {
            self.at += 1;
            if !self.keyword("in") {
                return Err(self.unexpected("IN after NOT"));
            }
            true
        } else {
            false
        };
        if self.keyword("in") {
            self.at += 1;
            if *self.peek() != Tok::LParen {
                return Err(self.unexpected("`(` after IN"));
            }
            self.at += 1;
            let mut values = vec![self.literal()?];
            while *self.peek() == Tok::Comma {
                self.at += 1;
                values.push(self.literal()?);
            }
            if *self.peek() != Tok::RParen {
                return Err(self.unexpected("`,` or `)`"));
            }
            self.at += 1;
            let e = Expr::In { field, values };
            return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
        }
        Ok(Expr::Truthy(field))
    }

    fn literal(&mut self) -> Result<Lit, ExprError> {
        let pos = self.pos();
        let value = match self.peek().clone() {
            Tok::Num(x) => {
                self.at += 1;
                Literal::Number(x)
            }
            Tok::Minus => {
                self.at += 1;
                match self.peek().clone() {
                    Tok::Num(x) => {
                        self.at += 1;
                        Literal::Number(-x)
                    }
                    _ => return Err(self.unexpected("a number after `-`")),
                }
            }
            Tok::Str(s) => {
                self.at += 1;
                Literal::Str(s)
            }
            Tok::Ident(s) if s.eq_ignore_ascii_case("true") => {
                self.at += 1;
                Literal::Bool(true)
            }
            Tok::Ident(s) if s.eq_ignore_ascii_case("false") => {
                self.at += 1;
                Literal::Bool(false)
            }
            Tok::Ident(s) if s.eq_ignore_ascii_case("now") => {
                self.at += 1;
                let sign = match self.peek() {
                    Tok::Plus => 1,
                    Tok::Minus => -1,
                    _ => {
                        return Ok(Lit {
                            value: Literal::Now(0),
                            pos,
                        })
                    }
                };
                self.at += 1;
                match self.peek().clone() {
                    Tok::Dur(s) => {
                        self.at += 1;
                        Literal::Now(sign * s)
                    }
                    _ => return Err(self.unexpected("a duration such as 30d, 12h or 2w")),
                }
            }
            _ => return Err(self.unexpected("a value (number, \"string\", TRUE, FALSE or now)")),
        };
        Ok(Lit { value, pos })
    }
}

/// Parse an audience expression.
///
/// # Errors
///
/// An [`ExprError`] with the position of the first token that cannot be read or does not fit
/// the grammar. Names are not checked here: that is evaluation's part.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        at: 0,
        depth: 0,
    };
    if *p.peek() == Tok::End {
        return Err(ExprError::new(0, "empty expression"));
    }
    let e = p.or()?;
    if *p.peek() != Tok::End {
        return Err(p.unexpected("AND, OR or the end"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn errors_point_at_the_mistake() {
        let e = parse("age > ").unwrap_err();
        assert_eq!(e.position, 6);
        let e = parse("vip ANDD age > 3").unwrap_err();
        assert_eq!(e.position, 4);
        assert_eq!(e.suggestion.as_deref(), Some("AND"));
        let e = parse("(a OR b").unwrap_err();
        assert_eq!(e.position, 7);
        assert!(e.to_string().contains("column 8"), "{e}");
        let e = parse("x = \"abc").unwrap_err();
        assert_eq!(e.position, 4);
        let e = parse("d < now - 30y").unwrap_err();
        assert_eq!(e.position, 12);
        assert!(parse("").is_err());
        assert!(parse(&"(".repeat(5000)).is_err());
        assert!(parse(&"NOT ".repeat(5000)).is_err());
    }

    #[test]
    fn precedence_and_sugar() {
        let e = parse("a OR b AND NOT c").unwrap();
        assert_eq!(e.to_string(), "a OR b AND NOT c");
        assert!(matches!(e, Expr::Or(..)));
        let e = parse("x not in ('a', 'b') and d >= now - 90d and y <> -2.5").unwrap();
        assert_eq!(
            e.to_string(),
            r#"NOT x IN ("a", "b") AND d >= now - 90d AND y != -2.5"#
        );
        assert_eq!(nearest("agge", ["age", "tier"]), Some("age".into()));
        assert_eq!(nearest("zzzzzz", ["age", "tier"]), None);
    }

    fn name() -> impl Strategy<Value = Name> {
        "[a-z_][a-z0-9_]{0,6}"
            .prop_filter("not a keyword", |s| !KEYWORDS.contains(&s.as_str()))
            .prop_map(|name| Name { name, pos: 0 })
    }

    fn lit() -> impl Strategy<Value = Lit> {
        prop_oneof![
            (-1e9f64..1e9).prop_map(Literal::Number),
            "[ -~]{0,8}".prop_map(Literal::Str),
            any::<bool>().prop_map(Literal::Bool),
            (-100_000i64..100_000).prop_map(Literal::Now),
        ]
        .prop_map(|value| Lit { value, pos: 0 })
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge)
        ]
    }

    pub(crate) fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            (name(), op(), lit()).prop_map(|(field, op, value)| Expr::Compare { field, op, value }),
            (name(), lit(), lit()).prop_map(|(field, lo, hi)| Expr::Between { field, lo, hi }),
            (name(), proptest::collection::vec(lit(), 1..4))
                .prop_map(|(field, values)| Expr::In { field, values }),
            name().prop_map(Expr::Exists),
            name().prop_map(Expr::Truthy),
            "[ -~]{0,8}".prop_map(|name| Expr::InAudience(Name { name, pos: 0 })),
        ];
        leaf.prop_recursive(5, 40, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(vec![a, b])),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(vec![a, b])),
                inner.prop_map(|a| Expr::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        #[test]
        fn pretty_print_round_trips(e in expr()) {
            let text = e.to_string();
            let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
            prop_assert_eq!(back, e, "{}", text);
        }

        #[test]
        fn parser_never_panics(s in "[ -~]{0,40}") {
            let _ = parse(&s);
        }
    }
}
