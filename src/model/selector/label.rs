//! Label selectors: `labels.Parse`, `labels.Selector`, `metav1.LabelSelectorAsSelector` and the
//! string forms kubectl prints.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use super::SelectorError;
use crate::model::field::{FieldError, FieldPath};
use crate::model::validation::{go_quote, is_qualified_name, is_valid_label_value};

/// How a requirement relates a label to its values (upstream `selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key in (a,b)`: the label exists and has one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=a`.
    Equals,
    /// `key==a`, the same as [`Operator::Equals`] but printed back as written.
    DoubleEquals,
    /// `key!=a`: the label is absent or has another value.
    NotEquals,
    /// `key`: the label exists.
    Exists,
    /// `!key`: the label does not exist.
    DoesNotExist,
    /// `key>1`: the label exists and is an integer greater than the value.
    GreaterThan,
    /// `key<1`: the label exists and is an integer less than the value.
    LessThan,
}

/// One condition on one label key (upstream `labels.Requirement`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    key: String,
    /// How the label relates to `values`.
    operator: Operator,
    /// The values, in the order given (sorted and deduplicated when parsed from a string).
    values: Vec<String>,
}

/// A label selector: the AND of its requirements, or "nothing" (matches no object).
///
/// The empty selector (the empty string, or a `LabelSelector` object with neither
/// `matchLabels` nor `matchExpressions`) matches everything; a missing `LabelSelector`
/// ([`LabelSelector::from_optional_label_selector`] of `None`) matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key (a stable sort: requirements on one key keep their order).
    requirements: Vec<Requirement>,
    /// Upstream `labels.Nothing()`: matches no labels at all and prints as the empty string.
    nothing: bool,
}

impl Requirement {
    /// A validated requirement, as upstream `labels.NewRequirement` with no field path: the key
    /// must be a qualified name, the values valid label values, and their number fit the
    /// operator. Every problem is reported, in upstream's words.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        new_requirement(key, operator, values, &FieldPath::default())
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How the label relates to the values.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, as given (parsed requirements have them sorted and unique).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement (upstream `Requirement.Matches`).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                labels.get(&self.key).is_some_and(|v| has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => {
                labels.get(&self.key).is_none_or(|v| !has_value(v))
            }
            Operator::Exists => labels.contains_key(&self.key),
            Operator::DoesNotExist => !labels.contains_key(&self.key),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(label)) = labels.get(&self.key).map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [value] = self.values.as_slice() else {
                    return false;
                };
                let Ok(value) = value.parse::<i64>() else {
                    return false;
                };
                match self.operator {
                    Operator::GreaterThan => label > value,
                    _ => label < value,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// Upstream `Requirement.String`: `!key`, `key`, `key=a`, `key in (a,b)` with several
    /// values sorted (without changing the requirement).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        if let [value] = self.values.as_slice() {
            f.write_str(value)?;
        } else {
            let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            f.write_str(&sorted.join(","))?;
        }
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl LabelSelector {
    /// The selector that matches every label set (upstream `labels.Everything()`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches nothing (upstream `labels.Nothing()`), what a missing
    /// `LabelSelector` object means.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses a selector string as `?labelSelector=` carries it (upstream `labels.Parse`):
    /// `a=b`, `a==b`, `a!=b`, `a in (b,c)`, `a notin (b,c)`, `a`, `!a`, `a>1`, `a<1`, joined by
    /// commas (AND). Spaces, tabs, CR and LF separate tokens.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser::new(selector);
        let mut requirements = parser.parse().map_err(SelectorError::Label)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// The selector of a `LabelSelector` object (upstream `metav1.LabelSelectorAsSelector`):
    /// each `matchLabels` entry is `key=value`, each `matchExpressions` entry its operator;
    /// an object with neither matches everything.
    pub fn from_label_selector(selector: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let match_labels = selector.match_labels.as_ref();
        let match_expressions = selector.match_expressions.as_deref().unwrap_or_default();
        if match_labels.is_none_or(BTreeMap::is_empty) && match_expressions.is_empty() {
            return Ok(LabelSelector::everything());
        }
        let mut requirements = Vec::new();
        for (key, value) in match_labels.into_iter().flatten() {
            requirements.push(Requirement::new(
                key,
                Operator::Equals,
                vec![value.clone()],
            )?);
        }
        for expression in match_expressions {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_owned())),
            };
            let values = expression.values.clone().unwrap_or_default();
            requirements.push(Requirement::new(&expression.key, operator, values)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// [`LabelSelector::from_label_selector`], where a missing object selects nothing (a
    /// Deployment or ReplicaSet without `spec.selector`).
    pub fn from_optional_label_selector(
        selector: Option<&metav1::LabelSelector>,
    ) -> Result<Self, SelectorError> {
        match selector {
            Some(selector) => LabelSelector::from_label_selector(selector),
            None => Ok(LabelSelector::nothing()),
        }
    }

    /// The selector matching exactly these labels, without validating them (upstream
    /// `labels.SelectorFromSet`; a Service's `spec.selector`). The empty map matches
    /// everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(key, value)| Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![value.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object given as JSON matches, by its `metadata.labels` (a missing or
    /// malformed map counts as no labels; non-string values are ignored).
    pub fn matches_object(&self, object: &Value) -> bool {
        let labels: BTreeMap<String, String> = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        self.matches(&labels)
    }

    /// Whether the selector restricts nothing (upstream `Empty()`): true for
    /// [`LabelSelector::everything`], false for [`LabelSelector::nothing`].
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }
}

impl fmt::Display for LabelSelector {
    /// Upstream `String()`: the requirements joined by `,` (the empty string for everything
    /// and for nothing). This is what `kubectl` prints and what `status.selector` of a Scale
    /// holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

/// Upstream `metav1.FormatLabelSelector`: the selector string, `<none>` when it is empty (or
/// the object is missing), `<error>` when the object is invalid.
pub fn format_label_selector(selector: Option<&metav1::LabelSelector>) -> String {
    match LabelSelector::from_optional_label_selector(selector) {
        Ok(selector) => {
            let s = selector.to_string();
            if s.is_empty() { "<none>".to_owned() } else { s }
        }
        Err(_) => "<error>".to_owned(),
    }
}

/// Upstream `labels.FormatLabels`: `k=v` pairs sorted by key and joined by `,`, or `<none>`.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "<none>".to_owned();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream `NewRequirement` with the field path `path` (empty for none): validation errors
/// are aggregated as upstream's `field.ErrorList.ToAggregate()` prints them.
fn new_requirement(
    key: &str,
    operator: Operator,
    values: Vec<String>,
    path: &FieldPath,
) -> Result<Requirement, SelectorError> {
    let mut errors: Vec<FieldError> = Vec::new();
    if let Some(error) = validate_label_key(key, &path.child("key")) {
        errors.push(error);
    }
    let values_path = path.child("values");
    match operator {
        Operator::In | Operator::NotIn => {
            if values.is_empty() {
                errors.push(FieldError::invalid_raw(
                    &values_path,
                    &go_string_slice(&values),
                    "for 'in', 'notin' operators, values set can't be empty",
                ));
            }
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
            if values.len() != 1 {
                errors.push(FieldError::invalid_raw(
                    &values_path,
                    &go_string_slice(&values),
                    "exact-match compatibility requires one single value",
                ));
            }
        }
        Operator::Exists | Operator::DoesNotExist => {
            if !values.is_empty() {
                errors.push(FieldError::invalid_raw(
                    &values_path,
                    &go_string_slice(&values),
                    "values set must be empty for exists and does not exist",
                ));
            }
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errors.push(FieldError::invalid_raw(
                    &values_path,
                    &go_string_slice(&values),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, value) in values.iter().enumerate() {
                if value.parse::<i64>().is_err() {
                    errors.push(FieldError::invalid(
                        &values_path.index(i),
                        value.as_str(),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
    }
    for (i, value) in values.iter().enumerate() {
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errors.push(FieldError::invalid(
                &values_path.index(i).key(key),
                value.as_str(),
                msgs.join("; "),
            ));
        }
    }
    if errors.is_empty() {
        Ok(Requirement {
            key: key.to_owned(),
            operator,
            values,
        })
    } else {
        Err(SelectorError::Label(aggregate(&errors)))
    }
}

/// Upstream `validateLabelKey`.
fn validate_label_key(key: &str, path: &FieldPath) -> Option<FieldError> {
    let msgs = is_qualified_name(key);
    (!msgs.is_empty()).then(|| FieldError::invalid(path, key, msgs.join("; ")))
}

/// The message of upstream's `field.ErrorList.ToAggregate()`: duplicates dropped, one message
/// as it is, several as `[a, b]`.
fn aggregate(errors: &[FieldError]) -> String {
    let mut messages: Vec<String> = Vec::new();
    for error in errors {
        let message = render_field_error(error);
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    if messages.len() == 1 {
        messages.remove(0)
    } else {
        format!("[{}]", messages.join(", "))
    }
}

/// A field error as upstream's `Error()` renders it, where a nil path prints as `<nil>`.
fn render_field_error(error: &FieldError) -> String {
    if error.field.as_str().is_empty() {
        format!("<nil>: {}", error.body())
    } else {
        error.to_string()
    }
}

/// A `[]string` as Go's `%#v` prints it: `[]string(nil)` when empty (upstream builds the
/// slice with `append([]string(nil), values...)`), else `[]string{"a", "b"}`.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_owned();
    }
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Lexer tokens (upstream `Token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Upstream `string2token`: the literal tokens.
fn literal_token(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream `Lexer`, byte by byte. Like upstream, a NUL byte where a token starts reads as the
/// end of the input.
struct Lexer<'a> {
    /// The selector being tokenized.
    s: &'a [u8],
    /// The next byte to read.
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    /// Upstream `scanIDOrKeyword`.
    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let b = self.read();
            if b == 0 {
                break;
            }
            if is_special_symbol(b) || is_whitespace(b) {
                self.unread();
                break;
            }
        }
        let literal = &self.s[start..end];
        let text = String::from_utf8_lossy(literal).into_owned();
        match literal_token(literal) {
            Some(token) => (token, text),
            None => (Token::Identifier, text),
        }
    }

    /// Upstream `scanSpecialSymbol`: the longest operator made of special symbols.
    fn scan_special_symbol(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let b = self.read();
            if b == 0 {
                break;
            }
            if !is_special_symbol(b) {
                self.unread();
                break;
            }
            if let Some(token) = literal_token(&self.s[start..self.pos]) {
                last = Some((token, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((token, end)) => (
                token,
                String::from_utf8_lossy(&self.s[start..end]).into_owned(),
            ),
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&self.s[start..self.pos])
                ),
            ),
        }
    }

    /// Upstream `Lex`.
    fn lex(&mut self) -> (Token, String) {
        let mut b = self.read();
        while is_whitespace(b) {
            b = self.read();
        }
        if b == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(b) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

/// Whether `in`/`notin` are keywords (after a key) or plain values (upstream `ParserContext`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

/// Upstream `Parser`: scans every token first, then descends.
struct Parser {
    /// Every token up to and including the first end of string.
    items: Vec<(Token, String)>,
    /// The next token to consume.
    position: usize,
}

impl Parser {
    fn new(selector: &str) -> Self {
        let mut lexer = Lexer {
            s: selector.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (token, literal) = lexer.lex();
            let end = token == Token::EndOfString;
            items.push((token, literal));
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn in_context(token: Token, context: Context) -> Token {
        if context == Context::Values && matches!(token, Token::In | Token::NotIn) {
            Token::Identifier
        } else {
            token
        }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        let (token, literal) = &self.items[self.position];
        (Parser::in_context(*token, context), literal.clone())
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let (token, literal) = &self.items[self.position];
        self.position += 1;
        (Parser::in_context(*token, context), literal.clone())
    }

    /// Upstream `parse`: errors are the whole message returned to the client.
    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    /// Upstream `parseRequirement`; the error is wrapped by the caller.
    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(operator @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return new_requirement(&key, operator, Vec::new(), &FieldPath::default())
                .map_err(|e| e.to_string());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(&key, operator, values, &FieldPath::default()).map_err(|e| e.to_string())
    }

    /// Upstream `parseKeyAndInferOperator`: `None` when an operator must follow.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        if let Some(error) = validate_label_key(&literal, &FieldPath::default()) {
            return Err(render_field_error(&error));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    /// Upstream `parseOperator`.
    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        })
    }

    /// Upstream `parseValues`: `(a,b)`, returned sorted and unique like a `sets.String`.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            )),
        }
    }

    /// Upstream `parseIdentifiersList`: a possibly empty list of possibly empty values.
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set = std::collections::BTreeSet::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    set.insert(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set.into_iter().collect()),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set.into_iter().collect());
                    }
                    if next == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    /// Upstream `parseExactValue`: one value, possibly empty.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (token, _) = self.lookahead(Context::Values);
        if matches!(token, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

#[cfg(test)]
pub(super) fn lex_all(s: &str) -> Vec<(&'static str, String)> {
    let mut lexer = Lexer {
        s: s.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        let (token, literal) = lexer.lex();
        if token == Token::EndOfString {
            return out;
        }
        let name = match token {
            Token::Error => "Error",
            Token::EndOfString => "EndOfString",
            Token::ClosedPar => "ClosedPar",
            Token::Comma => "Comma",
            Token::DoesNotExist => "DoesNotExist",
            Token::DoubleEquals => "DoubleEquals",
            Token::Equals => "Equals",
            Token::GreaterThan => "GreaterThan",
            Token::Identifier => "Identifier",
            Token::In => "In",
            Token::LessThan => "LessThan",
            Token::NotEquals => "NotEquals",
            Token::NotIn => "NotIn",
            Token::OpenPar => "OpenPar",
        };
        out.push((name, literal));
    }
}
