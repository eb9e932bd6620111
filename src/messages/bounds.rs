//! What a template may allocate, bounded when it is saved.
//!
//! minijinja's fuel counts instructions, not bytes: `{% set b = a ~ a %}` is one
//! instruction however long `a` is, so ten lines of a template could take
//! gigabytes, and minijinja has no allocation hook to stop that while rendering.
//! So Herald walks the parsed template at save and works out, for every value it
//! can make, the most bytes it can hold — from the largest inputs Herald passes
//! (a contact, an event's parameters) and the text written in the template — and
//! refuses a template whose values could exceed [`MAX_VALUE_BYTES`], whose stored
//! values together could exceed [`MAX_STORED_BYTES`], or whose made values,
//! counted every time round their loops, could exceed [`MAX_WORK_BYTES`] (the
//! copying that takes time). A template that passes cannot take more whatever the
//! contact or event. The walk is conservative: where it cannot tell (a number
//! from an event multiplying text, a value built from itself in a loop), it
//! refuses and says what to write instead.
//!
//! This reads minijinja's parsed template (its `unstable_machinery` API), so a
//! minijinja upgrade may need this file changed; Cargo.lock pins the version.

use minijinja::machinery::ast::{self, BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::{Span, WhitespaceConfig, parse};
use minijinja::syntax::SyntaxConfig;

use super::template_error::{TemplateError, unreadable};

/// The most one value of a template may hold (the whole rendered message may hold
/// 1 MiB).
pub const MAX_VALUE_BYTES: u64 = 1024 * 1024;
/// The most the values a template stores (`set`, `with`, loops) may hold together.
pub const MAX_STORED_BYTES: u64 = 8 * 1024 * 1024;
/// The most bytes a template's operations may make in one rendering, counted every
/// time round their loops (about a third of a second of copying).
pub const MAX_WORK_BYTES: u64 = 1024 * 1024 * 1024;

/// The largest inputs Herald renders with: a contact field or attribute value, a
/// whole contact, an event (its parameters are at most 16 KiB of JSON), a link.
const FIELD: u64 = 4 * 1024;
const CONTACT: u64 = 64 * 1024;
const EVENT: u64 = 32 * 1024;
const LINK: u64 = 2 * 1024;
/// A number, a boolean, or one item's overhead in a list.
const SCALAR: u64 = 32;
/// minijinja's own limits: items of `range()`, the text `*` may make.
const RANGE_ITEMS: u64 = 100_000;
const REPEAT_BYTES: u64 = 100_000_000;

/// Refuses a template whose values cannot be bounded (see the module's comment).
pub fn check(source: &str) -> Result<(), TemplateError> {
    let parsed = parse(
        source,
        "<template>",
        SyntaxConfig,
        WhitespaceConfig::default(),
    )
    .map_err(unreadable)?;
    let mut walk = Walk {
        names: Vec::new(),
        times: 1,
        work: 0,
    };
    walk.stmt(&parsed).map(|_| ())
}

struct Walk<'s> {
    /// The names the template stored so far and the most each holds, innermost
    /// last (a name stored again is pushed again).
    names: Vec<(&'s str, u64, bool)>,
    /// How often the statement being walked can run (its loops' items multiplied).
    times: u64,
    work: u64,
}

type Walked = Result<u64, TemplateError>;

/// Why the template is refused, at `line`.
fn refusal(line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        line,
        message: message.into(),
    }
}

impl<'s> Walk<'s> {
    /// A value made at `line`: counted as work, and refused when too large.
    fn made(&mut self, line: usize, bytes: u64) -> Walked {
        if bytes > MAX_VALUE_BYTES {
            return Err(refusal(
                line,
                format!(
                    "this can make a value of more than {} MiB for some contacts or events; write the text without repeating it, or repeat it fewer times.",
                    MAX_VALUE_BYTES / (1024 * 1024)
                ),
            ));
        }
        self.work = self.work.saturating_add(bytes.saturating_mul(self.times));
        if self.work > MAX_WORK_BYTES {
            return Err(refusal(
                line,
                "this template can do too much work for one email (loops inside loops over long values); loop over fewer items.",
            ));
        }
        Ok(bytes)
    }

    /// Stores `name` holding at most `bytes`; `made` when the value is new (not a
    /// loop's item, which refers to its list's).
    fn bind_name(
        &mut self,
        name: &'s str,
        bytes: u64,
        line: usize,
        made: bool,
    ) -> Result<(), TemplateError> {
        self.names.push((name, bytes, made));
        let stored: u64 = self
            .names
            .iter()
            .filter(|n| n.2)
            .map(|n| n.1)
            .fold(0, u64::saturating_add);
        if stored > MAX_STORED_BYTES {
            return Err(refusal(
                line,
                format!(
                    "the values this template stores can hold more than {} MiB together; store fewer or shorter values.",
                    MAX_STORED_BYTES / (1024 * 1024)
                ),
            ));
        }
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<u64> {
        self.names.iter().rev().find(|n| n.0 == name).map(|n| n.1)
    }

    /// Walks statements; returns the most output they can write (what a
    /// `{% set %}…{% endset %}` or `{% filter %}` block captures).
    fn stmts(&mut self, stmts: &[Stmt<'s>]) -> Walked {
        let mut out = 0u64;
        for stmt in stmts {
            out = out.saturating_add(self.stmt(stmt)?);
        }
        Ok(out)
    }

    fn stmt(&mut self, stmt: &Stmt<'s>) -> Walked {
        match stmt {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => self.expr(&e.expr),
            Stmt::EmitRaw(r) => Ok(r.raw.len() as u64),
            Stmt::ForLoop(f) => self.for_loop(f, line(f.span())),
            Stmt::IfCond(c) => {
                self.expr(&c.expr)?;
                // Names stored in either branch stay stored after it: both count.
                let yes = self.stmts(&c.true_body)?;
                let no = self.stmts(&c.false_body)?;
                Ok(yes.max(no))
            }
            Stmt::WithBlock(w) => {
                let scope = self.names.len();
                for (target, value) in &w.assignments {
                    let bytes = self.expr(value)?;
                    self.bind(target, bytes, line(w.span()), true)?;
                }
                let out = self.stmts(&w.body)?;
                self.names.truncate(scope);
                Ok(out)
            }
            Stmt::Set(s) => {
                let bytes = self.expr(&s.expr)?;
                self.bind(&s.target, bytes, line(s.span()), true)?;
                Ok(0)
            }
            Stmt::SetBlock(s) => {
                let at = line(s.span());
                let mut bytes = self.stmts(&s.body)?;
                bytes = self.made(at, bytes)?;
                if let Some(filter) = &s.filter {
                    bytes = self.filtered(filter, bytes)?;
                }
                self.bind(&s.target, bytes, at, true)?;
                Ok(0)
            }
            Stmt::AutoEscape(a) => {
                self.expr(&a.enabled)?;
                self.stmts(&a.body)
            }
            Stmt::FilterBlock(f) => {
                let at = line(f.span());
                let body = self.stmts(&f.body)?;
                let body = self.made(at, body)?;
                self.filtered(&f.filter, body)
            }
            Stmt::Do(d) => self.call(&d.call, line(d.span())),
        }
    }

    fn bind(
        &mut self,
        target: &Expr<'s>,
        bytes: u64,
        at: usize,
        made: bool,
    ) -> Result<(), TemplateError> {
        match target {
            Expr::Var(v) => self.bind_name(v.id, bytes, at, made),
            Expr::List(l) => l
                .items
                .iter()
                .try_for_each(|item| self.bind(item, bytes, at, made)),
            _ => Err(refusal(
                at,
                "only names can be set (namespaces are not offered).",
            )),
        }
    }

    fn for_loop(&mut self, f: &ast::ForLoop<'s>, at: usize) -> Walked {
        if f.recursive {
            return Err(refusal(at, "recursive loops are not offered."));
        }
        let items = self.expr(&f.iter)?;
        let (rounds, item) = match range_items(&f.iter) {
            Some(n) => (n, SCALAR),
            // An input or stored list has fewer items than bytes.
            None => (items, items),
        };
        let scope = self.names.len();
        // The body is walked as if its items were empty, every time round, and as
        // if all its items were one, once: what the body makes of an item, summed
        // over the items, is at most what it makes of them all at once (the
        // bounds grow at least in proportion), so both walks together bound it
        // without multiplying the items' size by their number.
        let (each, _) = self.loop_body(f, at, 0, rounds.max(1))?;
        self.names.truncate(scope);
        let (all, first) = self.loop_body(f, at, item, 1)?;
        // A third walk, after the second: a name stored in the body from itself
        // grows each time round, which no bound holds.
        let after: Vec<(&str, u64)> = self.names[first..].iter().map(|n| (n.0, n.1)).collect();
        let work = self.work;
        self.stmts(&f.body)?;
        self.work = work;
        for ((name, a), again) in after.iter().zip(&self.names[first + after.len()..]) {
            if again.1 > *a {
                return Err(refusal(
                    at,
                    format!(
                        "{name} is built from itself each time round the loop and can grow without end; build it with join instead."
                    ),
                ));
            }
        }
        self.names.truncate(scope);
        let body = each.saturating_mul(rounds).saturating_add(all);
        let otherwise = self.stmts(&f.else_body)?;
        Ok(body.max(otherwise))
    }

    /// Walks a loop's body with its items at most `item` bytes, run `rounds`
    /// times; returns the most one walk writes, and where the names the body
    /// stores begin (after the loop's own: its target, which may be several
    /// names, and `loop`).
    fn loop_body(
        &mut self,
        f: &ast::ForLoop<'s>,
        at: usize,
        item: u64,
        rounds: u64,
    ) -> Result<(u64, usize), TemplateError> {
        let outer = self.times;
        self.times = outer.saturating_mul(rounds);
        self.bind(&f.target, item, at, false)?;
        self.bind_name("loop", item, at, false)?;
        if let Some(filter) = &f.filter_expr {
            self.expr(filter)?;
        }
        let first = self.names.len();
        let out = self.stmts(&f.body)?;
        self.times = outer;
        Ok((out, first))
    }

    fn args(&mut self, args: &[CallArg<'s>]) -> Result<Vec<(u64, Option<i64>)>, TemplateError> {
        args.iter()
            .map(|arg| {
                let e = match arg {
                    CallArg::Pos(e) | CallArg::Kwarg(_, e) => e,
                    CallArg::PosSplat(e) | CallArg::KwargSplat(e) => e,
                };
                Ok((self.expr(e)?, int_const(e)))
            })
            .collect()
    }

    /// A filter applied to a value of `input` bytes.
    fn filtered(&mut self, filter: &Expr<'s>, input: u64) -> Walked {
        match filter {
            Expr::Filter(f) => {
                let at = line(f.span());
                let input = match &f.expr {
                    Some(e) => self.expr(e)?,
                    None => input,
                };
                let args = self.args(&f.args)?;
                let bytes = match (f.name, &f.expr) {
                    // Widths (`%20s`) pad: they must be written in the template.
                    ("format", Some(Expr::Const(c))) => c.value.as_str().and_then(|text| {
                        let sum: u64 = args.iter().map(|(b, _)| *b).fold(0, u64::saturating_add);
                        Some(
                            input
                                .saturating_add(printf_widths(text)?)
                                .saturating_add(sum.saturating_mul(6)),
                        )
                    }),
                    ("format", _) => None,
                    _ => filter_bound(f.name, input, &args),
                };
                let bytes = bytes.ok_or_else(|| refusal(at, format!(
                        "{:?} cannot be used with a size that comes from a contact or event here; write the number in the template (for indent, at most 100).",
                        f.name
                    )))?;
                self.made(at, bytes)
            }
            other => self.expr(other),
        }
    }

    fn call(&mut self, call: &ast::Call<'s>, at: usize) -> Walked {
        let args = self.args(&call.args)?;
        let sum: u64 = args.iter().map(|(b, _)| *b).fold(0, u64::saturating_add);
        match call.identify_call() {
            ast::CallType::Function("range") => {
                let items = args.iter().filter_map(|(_, n)| *n).max();
                let items = items.map_or(RANGE_ITEMS, |n| n.clamp(0, RANGE_ITEMS as i64) as u64);
                // range() is lazy; its bound is what a list of it would hold.
                Ok(items.saturating_mul(SCALAR))
            }
            ast::CallType::Function("dict") => self.made(at, sum.saturating_add(SCALAR)),
            ast::CallType::Method(on, "cycle" | "changed") => {
                self.expr(on)?;
                Ok(args.iter().map(|(b, _)| *b).max().unwrap_or(0))
            }
            _ => Err(refusal(
                at,
                "only range(), dict(), loop.cycle() and loop.changed() can be called in a message.",
            )),
        }
    }

    fn expr(&mut self, expr: &Expr<'s>) -> Walked {
        let at = line(expr.span());
        match expr {
            Expr::Var(v) => Ok(match v.id {
                "contact" => CONTACT,
                "event" => EVENT,
                "preferences_url" | "unsubscribe_url" => LINK,
                name => self.lookup(name).unwrap_or(SCALAR),
            }),
            Expr::Const(c) => Ok(const_bytes(&c.value)),
            Expr::Slice(s) => {
                for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(part)?;
                }
                let whole = self.expr(&s.expr)?;
                self.made(at, whole)
            }
            Expr::UnaryOp(u) => {
                self.expr(&u.expr)?;
                Ok(SCALAR)
            }
            Expr::BinOp(b) => {
                let left = self.expr(&b.left)?;
                let right = self.expr(&b.right)?;
                let bytes = match b.op {
                    BinOpKind::Concat | BinOpKind::Add => left.saturating_add(right),
                    BinOpKind::Mul => match (int_const(&b.left), int_const(&b.right)) {
                        (Some(n), _) => right.saturating_mul(n.max(0) as u64),
                        (_, Some(n)) => left.saturating_mul(n.max(0) as u64),
                        // A float written in the template makes a number.
                        _ if is_float(&b.left) || is_float(&b.right) => SCALAR,
                        _ => {
                            return Err(refusal(at, format!(
                                    "* repeats text as often as a number says, and here neither side is a number written in the template (it may repeat text up to {} MB); write the number in the template.",
                                    REPEAT_BYTES / 1_000_000
                                )));
                        }
                    }
                    .max(SCALAR),
                    BinOpKind::ScAnd | BinOpKind::ScOr => left.max(right),
                    _ => SCALAR,
                };
                self.made(at, bytes)
            }
            Expr::Compare(c) => {
                self.expr(&c.expr)?;
                for op in &c.ops {
                    self.expr(&op.expr)?;
                }
                Ok(SCALAR)
            }
            Expr::IfExpr(i) => {
                self.expr(&i.test_expr)?;
                let yes = self.expr(&i.true_expr)?;
                let no = match &i.false_expr {
                    Some(e) => self.expr(e)?,
                    None => 0,
                };
                Ok(yes.max(no))
            }
            Expr::Filter(_) => self.filtered(expr, 0),
            Expr::Test(t) => {
                self.expr(&t.expr)?;
                self.args(&t.args)?;
                Ok(SCALAR)
            }
            Expr::GetAttr(g) => {
                let whole = self.expr(&g.expr)?;
                Ok(match (&g.expr, g.name) {
                    (Expr::Var(v), "attributes") if v.id == "contact" => CONTACT,
                    (Expr::Var(v), _) if v.id == "contact" => FIELD,
                    (Expr::GetAttr(a), _) if a.name == "attributes" => FIELD,
                    _ => whole,
                })
            }
            Expr::GetItem(g) => {
                self.expr(&g.subscript_expr)?;
                self.expr(&g.expr)
            }
            Expr::Call(c) => self.call(c, at),
            Expr::List(l) => {
                let mut bytes = 0u64;
                for item in &l.items {
                    bytes = bytes.saturating_add(self.expr(item)?.saturating_add(SCALAR));
                }
                self.made(at, bytes)
            }
            Expr::Map(m) => {
                let mut bytes = 0u64;
                for item in m.keys.iter().chain(&m.values) {
                    bytes = bytes.saturating_add(self.expr(item)?.saturating_add(SCALAR));
                }
                self.made(at, bytes)
            }
        }
    }
}

/// The most a filter can make of `input` bytes with these arguments (bytes, and
/// the value when written as a whole number); `None` when it cannot be bounded.
fn filter_bound(name: &str, input: u64, args: &[(u64, Option<i64>)]) -> Option<u64> {
    let arg = |i: usize| args.get(i).map_or(0, |(b, _)| *b);
    let sum: u64 = args.iter().map(|(b, _)| *b).fold(0, u64::saturating_add);
    // Text becomes a list of one value per character, each with its overhead.
    let as_list = input.saturating_mul(SCALAR);
    Some(match name {
        "length" | "count" | "int" | "float" | "abs" | "round" | "bool" | "sum" => SCALAR,
        "lower" | "upper" | "title" | "capitalize" | "trim" | "string" | "reverse" | "sort"
        | "unique" | "first" | "last" | "min" | "max" | "attr" | "select" | "reject"
        | "selectattr" | "rejectattr" | "map" | "safe" => input.saturating_mul(2),
        "default" | "d" => input.max(arg(0)),
        // An escaped character takes at most six (`&quot;`, `\u0022`, `%22` …).
        "escape" | "e" | "tojson" | "urlencode" | "pprint" => {
            let indent = args.first().and_then(|(_, n)| *n).unwrap_or(0);
            if name == "tojson" && !(0..=16).contains(&indent) {
                return None;
            }
            input.saturating_mul(6).saturating_mul(1 + indent as u64)
        }
        "list" | "split" | "lines" | "items" | "dictsort" | "batch" | "slice" | "groupby"
        | "chain" | "zip" => as_list.saturating_add(sum.saturating_mul(SCALAR)),
        // Every item (at most one per byte) gets a separator.
        "join" => input.saturating_add(input.saturating_mul(arg(0))),
        // An empty `old` puts `new` between every character.
        "replace" => input.saturating_mul(1 + arg(1)),
        "indent" => {
            let width = match args.first() {
                Some((_, Some(n))) if (0..=100).contains(n) => *n as u64,
                Some((_, Some(_))) => return None,
                // An indent given as text: that text on every line.
                Some((bytes, None)) => *bytes,
                None => 4,
            };
            input.saturating_mul(1 + width)
        }
        _ => SCALAR.max(input),
    })
}

/// The most padding a printf-style format can add: every number written in it,
/// as if each were a width; `None` when a width comes from an argument (`%*s`).
fn printf_widths(format: &str) -> Option<u64> {
    if format.contains('*') {
        return None;
    }
    let mut total = 0u64;
    let mut digits = 0u64;
    for c in format.chars().chain(std::iter::once(' ')) {
        match c.to_digit(10) {
            Some(d) => digits = digits.saturating_mul(10).saturating_add(u64::from(d)),
            None => {
                total = total.saturating_add(digits);
                digits = 0;
            }
        }
    }
    Some(total)
}

fn line(span: Span) -> usize {
    usize::from(span.start_line)
}

/// The value of a whole number written in the template (`3`, `-1`).
fn int_const(expr: &Expr<'_>) -> Option<i64> {
    match expr {
        Expr::Const(c) => c.value.as_i64(),
        _ => None,
    }
}

fn is_float(expr: &Expr<'_>) -> bool {
    matches!(expr, Expr::Const(c) if c.value.kind() == minijinja::value::ValueKind::Number && c.value.as_i64().is_none())
}

/// `range(n)` with `n` written in the template: its items.
fn range_items(expr: &Expr<'_>) -> Option<u64> {
    let Expr::Call(call) = expr else { return None };
    if !matches!(call.identify_call(), ast::CallType::Function("range")) {
        return None;
    }
    let mut most = None;
    for arg in &call.args {
        if let CallArg::Pos(e) = arg {
            most = Some(int_const(e)?.clamp(0, RANGE_ITEMS as i64) as u64).max(most);
        } else {
            return None;
        }
    }
    most
}

fn const_bytes(value: &minijinja::Value) -> u64 {
    value.as_str().map_or(SCALAR, |s| s.len() as u64)
}

#[cfg(test)]
#[path = "bounds_tests.rs"]
mod tests;
