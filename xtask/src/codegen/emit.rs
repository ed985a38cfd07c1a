//! Turns one parsed spec into Rust source (unformatted; the caller runs rustfmt).

use super::spec::{Field, Kind, Prim, Spec, StructDef, Ty, Versions};
use std::fmt::Write;

/// A condition on `version`, simplified against the versions it is evaluated in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Always,
    Never,
    Expr(String),
}

/// `range` as a Rust condition, knowing that `version` always lies in `within`.
fn cond(range: Option<Versions>, within: Versions) -> Cond {
    let Some(range) = range else {
        return Cond::Never;
    };
    let Some(r) = range.intersect(within) else {
        return Cond::Never;
    };
    match (r.min > within.min, r.max < within.max) {
        (false, false) => Cond::Always,
        (true, false) => Cond::Expr(format!("version >= {}", r.min)),
        (false, true) => Cond::Expr(format!("version <= {}", r.max)),
        (true, true) => Cond::Expr(format!("({}..={}).contains(&version)", r.min, r.max)),
    }
}

fn cond_bool(c: &Cond) -> String {
    match c {
        Cond::Always => "true".into(),
        Cond::Never => "false".into(),
        Cond::Expr(e) => e.clone(),
    }
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// "ThrottleTimeMs" -> "throttle_time_ms", "KRaftVersionRecord" -> "k_raft_version_record".
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Rust identifier of a field.
pub fn field_ident(name: &str) -> String {
    let s = snake(name);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// The context every struct of one message is generated in.
struct Ctx<'a> {
    spec: &'a Spec,
    /// Whether the message has flexible versions at all (structs then carry unknown tags).
    has_flexible: bool,
    flexible: Cond,
}

impl Ctx<'_> {
    fn valid(&self) -> Versions {
        self.spec.valid
    }

    fn struct_def(&self, name: &str) -> &StructDef {
        self.spec
            .structs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{}: struct {name} not defined", self.spec.file_name))
    }

    /// Versions of the message in which `field` is on the wire.
    fn present(&self, field: &Field) -> Cond {
        cond(Some(field.versions), self.valid())
    }

    fn compact(&self, field: &Field) -> String {
        match field.flexible_override {
            Some(None) => "false".into(),
            Some(Some(_)) => panic!("field-level flexibleVersions other than none"),
            None => match &self.flexible {
                Cond::Expr(_) => "flexible".into(),
                c => cond_bool(c),
            },
        }
    }

    /// Whether null is allowed now, knowing the field is present.
    fn nullable_now(&self, field: &Field) -> String {
        let within = field
            .versions
            .intersect(self.valid())
            .unwrap_or(self.valid());
        cond_bool(&cond(field.nullable, within))
    }

    fn is_tagged(&self, field: &Field) -> bool {
        field.tag.is_some()
    }
}

fn base_type(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => p.rust().into(),
        Ty::String => "String".into(),
        Ty::Bytes | Ty::Records => "Bytes".into(),
        Ty::Struct(n) => n.clone(),
        Ty::Array(e) => format!("Vec<{}>", base_type(e)),
    }
}

fn rust_type(field: &Field) -> String {
    if field.nullable.is_some() {
        format!("Option<{}>", base_type(&field.ty))
    } else {
        base_type(&field.ty)
    }
}

/// The default value of a field as a Rust expression, and whether it equals the type's
/// `Default` (so `#[derive(Default)]` can be used when every field's does).
fn default_expr(field: &Field) -> (String, bool) {
    let spec_default = field.default.as_deref();
    if field.nullable.is_some() {
        // Kafka: an explicit "null" default is null; records and structs default to null;
        // other nullable fields default to the empty value.
        if spec_default == Some("null") || matches!(field.ty, Ty::Records | Ty::Struct(_)) {
            return ("None".into(), true);
        }
        let (inner, _) = non_null_default(&field.ty, spec_default, &field.name);
        return (format!("Some({inner})"), false);
    }
    assert!(
        spec_default != Some("null") || matches!(field.ty, Ty::Array(_)),
        "field {} defaults to null but is not nullable",
        field.name
    );
    non_null_default(&field.ty, spec_default, &field.name)
}

fn parse_int(text: &str) -> i64 {
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x") {
        i64::from_str_radix(hex, 16)
    } else if let Some(hex) = t.strip_prefix("-0x") {
        i64::from_str_radix(hex, 16).map(|v| -v)
    } else {
        t.parse()
    };
    parsed.unwrap_or_else(|e| panic!("bad integer default {text:?}: {e}"))
}

fn non_null_default(ty: &Ty, spec_default: Option<&str>, name: &str) -> (String, bool) {
    let spec_default = spec_default.filter(|d| *d != "null");
    match ty {
        Ty::Prim(Prim::Bool) => match spec_default {
            Some("true") => ("true".into(), false),
            None | Some("false") => ("false".into(), true),
            Some(other) => panic!("{name}: bad bool default {other:?}"),
        },
        Ty::Prim(Prim::F64) => {
            let v: f64 = spec_default.map_or(0.0, |d| d.parse().expect("float default"));
            (format!("{v:?}"), v == 0.0)
        }
        Ty::Prim(Prim::Uuid) => {
            assert!(spec_default.is_none(), "{name}: uuid defaults unsupported");
            ("Uuid::ZERO".into(), true)
        }
        Ty::Prim(p) => {
            let v = spec_default.map_or(0, parse_int);
            let text = match (p, v) {
                (Prim::I32, v) if v == i64::from(i32::MAX) => "i32::MAX".into(),
                (Prim::I32, v) if v == i64::from(i32::MIN) => "i32::MIN".into(),
                (Prim::I64, v) if v == i64::MAX => "i64::MAX".into(),
                (Prim::I64, v) if v == i64::MIN => "i64::MIN".into(),
                (_, v) => v.to_string(),
            };
            (text, v == 0)
        }
        Ty::String => match spec_default {
            None | Some("") => ("String::new()".into(), true),
            Some(s) => (format!("{s:?}.to_string()"), false),
        },
        Ty::Bytes | Ty::Records => ("Bytes::new()".into(), true),
        Ty::Struct(n) => (format!("{n}::default()"), true),
        Ty::Array(_) => ("Vec::new()".into(), true),
    }
}

/// The condition under which a tagged field differs from its default (and is written).
fn differs_from_default(field: &Field, value: &str) -> String {
    let (default, _) = default_expr(field);
    match (&field.ty, default.as_str()) {
        (_, "None") => format!("{value}.is_some()"),
        (_, d) if d.starts_with("Some(") => format!("!matches!(&{value}, Some(v) if v.is_empty())"),
        (Ty::Prim(Prim::Bool), "false") => value.to_string(),
        (Ty::Prim(Prim::Bool), _) => format!("!{value}"),
        (Ty::String | Ty::Bytes | Ty::Records | Ty::Array(_), d) if d.ends_with("::new()") => {
            format!("!{value}.is_empty()")
        }
        (_, d) => format!("{value} != {d}"),
    }
}

impl Ctx<'_> {
    /// An expression writing the field to `sink`, and whether it returns a `Result`.
    fn write_expr(&self, field: &Field, sink: &str) -> (String, bool) {
        let f = format!("self.{}", field_ident(&field.name));
        let c = self.compact(field);
        let n = self.nullable_now(field);
        let fname = snake(&field.name);
        let nullable = field.nullable.is_some();
        let expr = match (&field.ty, nullable) {
            (Ty::Prim(_), _) => return (format!("write_fixed({sink}, {f})"), false),
            (Ty::String, false) => format!("write_string({sink}, &{f}, {c})"),
            (Ty::String, true) => {
                format!("write_opt_string({sink}, {f}.as_deref(), {c}, {n}, {fname:?})")
            }
            (Ty::Bytes | Ty::Records, false) => format!("write_bytes({sink}, &{f}, {c})"),
            (Ty::Bytes | Ty::Records, true) => {
                format!("write_opt_bytes({sink}, {f}.as_deref(), {c}, {n}, {fname:?})")
            }
            (Ty::Struct(_), false) => format!("{f}.write_to({sink}, version)"),
            (Ty::Struct(_), true) => {
                format!("write_opt_struct({sink}, {f}.as_ref(), version, {n}, {fname:?})")
            }
            (Ty::Array(_), false) => format!("write_array({sink}, &{f}, version, {c})"),
            (Ty::Array(_), true) => {
                format!("write_opt_array({sink}, {f}.as_deref(), version, {c}, {n}, {fname:?})")
            }
        };
        (expr, true)
    }

    fn write_stmt(&self, field: &Field, sink: &str) -> String {
        match self.write_expr(field, sink) {
            (e, true) => format!("{e}?;"),
            (e, false) => format!("{e};"),
        }
    }

    fn read_expr(&self, field: &Field, buf: &str) -> String {
        let c = self.compact(field);
        let n = self.nullable_now(field);
        match (&field.ty, field.nullable.is_some()) {
            (Ty::Prim(_), _) => format!("read_fixed({buf})?"),
            (Ty::String, false) => format!("read_string({buf}, {c})?"),
            (Ty::String, true) => format!("read_opt_string({buf}, {c}, {n})?"),
            (Ty::Bytes | Ty::Records, false) => format!("read_bytes({buf}, {c})?"),
            (Ty::Bytes | Ty::Records, true) => format!("read_opt_bytes({buf}, {c}, {n})?"),
            (Ty::Struct(s), false) => format!("{s}::read_from({buf}, version)?"),
            (Ty::Struct(_), true) => format!("read_opt_struct({buf}, version, {n})?"),
            (Ty::Array(_), false) => format!("read_array({buf}, version, {c})?"),
            (Ty::Array(_), true) => format!("read_opt_array({buf}, version, {c}, {n})?"),
        }
    }

    fn is_flexible_at(&self, version: i16) -> bool {
        self.spec.flexible.is_some_and(|f| f.contains(version))
    }

    /// Fewest bytes the struct takes at `version`.
    fn min_size_at(&self, def: &StructDef, version: i16) -> usize {
        let flexible = self.is_flexible_at(version);
        let mut total = usize::from(flexible);
        for field in &def.fields {
            if !field.versions.contains(version) || self.is_tagged(field) {
                continue;
            }
            let compact = flexible && field.flexible_override.is_none();
            let nullable = field.nullable.is_some_and(|n| n.contains(version));
            total += match &field.ty {
                Ty::Prim(p) => p.size(),
                Ty::String => {
                    if compact {
                        1
                    } else {
                        2
                    }
                }
                Ty::Bytes | Ty::Records | Ty::Array(_) => {
                    if compact {
                        1
                    } else {
                        4
                    }
                }
                Ty::Struct(_) if nullable => 1,
                Ty::Struct(s) => self.min_size_at(self.struct_def(s), version),
            };
        }
        total
    }

    fn min_size(&self, def: &StructDef) -> usize {
        let v = self.valid();
        (v.min..=v.max)
            .map(|version| self.min_size_at(def, version))
            .min()
            .unwrap_or(0)
    }
}

fn field_doc(field: &Field) -> String {
    let range = |v: Versions| {
        if v.max == i16::MAX {
            format!("{}+", v.min)
        } else if v.min == v.max {
            v.min.to_string()
        } else {
            format!("{}-{}", v.min, v.max)
        }
    };
    let mut doc = format!("Versions {}", range(field.versions));
    if let Some(n) = field.nullable {
        let _ = write!(doc, "; nullable {}", range(n));
    }
    if let (Some(tag), Some(t)) = (field.tag, field.tagged) {
        let _ = write!(doc, "; tag {tag} in {}", range(t));
    }
    if let Some(d) = &field.default {
        let _ = write!(doc, "; default {d:?}");
    }
    format!("{doc}.")
}

/// Emits everything for one struct: type, Default, StructCodec (and Message for the root).
fn emit_struct(ctx: &Ctx, def: &StructDef, is_root: bool, out: &mut String) {
    let fields: Vec<&Field> = def
        .fields
        .iter()
        .filter(|f| ctx.present(f) != Cond::Never)
        .collect();
    let all_rust_default = fields.iter().all(|f| default_expr(f).1);
    let derive = if all_rust_default {
        "#[derive(Debug, Clone, PartialEq, Default)]"
    } else {
        "#[derive(Debug, Clone, PartialEq)]"
    };
    let _ = writeln!(out, "{derive}\npub struct {} {{", def.name);
    for f in &fields {
        let _ = writeln!(
            out,
            "/// {}\npub {}: {},",
            field_doc(f),
            field_ident(&f.name),
            rust_type(f)
        );
    }
    if ctx.has_flexible {
        out.push_str(
            "/// Tagged fields not known to this code, kept so a re-encode loses nothing.\n\
             pub unknown_tagged_fields: Vec<RawTaggedField>,\n",
        );
    }
    out.push_str("}\n\n");
    if !all_rust_default {
        emit_default(ctx, def, &fields, out);
    }
    emit_codec(ctx, def, &fields, out);
    if is_root {
        emit_message_impl(ctx, out);
    }
}

fn emit_default(ctx: &Ctx, def: &StructDef, fields: &[&Field], out: &mut String) {
    let _ = writeln!(
        out,
        "impl Default for {} {{\nfn default() -> Self {{\nSelf {{",
        def.name
    );
    for f in fields {
        let _ = writeln!(out, "{}: {},", field_ident(&f.name), default_expr(f).0);
    }
    if ctx.has_flexible {
        out.push_str("unknown_tagged_fields: Vec::new(),\n");
    }
    out.push_str("}\n}\n}\n\n");
}

fn flexible_binding(ctx: &Ctx) -> String {
    match &ctx.flexible {
        Cond::Expr(e) => format!("let flexible = {e};\n"),
        _ => String::new(),
    }
}

/// Wraps `body` in `if flexible { .. }` as the message's flexibility requires.
fn when_flexible(ctx: &Ctx, body: &str) -> String {
    match &ctx.flexible {
        Cond::Always => body.to_string(),
        Cond::Never => String::new(),
        Cond::Expr(_) => format!("if flexible {{\n{body}}}\n"),
    }
}

fn emit_codec(ctx: &Ctx, def: &StructDef, fields: &[&Field], out: &mut String) {
    let read = read_body(ctx, fields);
    let write = write_body(ctx, fields);
    let param = |body: &str, name: &str| {
        if uses_ident(body, name) {
            name.to_string()
        } else {
            format!("_{name}")
        }
    };
    let _ = write!(
        out,
        "impl StructCodec for {name} {{\n\
         const MIN_SIZE: usize = {min};\n\n\
         fn read_from({rb}: &mut Bytes, {rv}: i16) -> Result<Self, DecodeError> {{\n{read}}}\n\n\
         fn write_to<S: Sink>(&self, {ws}: &mut S, {wv}: i16) -> Result<(), EncodeError> {{\n{write}}}\n\
         }}\n\n",
        name = def.name,
        min = ctx.min_size(def),
        rb = param(&read, "buf"),
        rv = param(&read, "version"),
        ws = param(&write, "s"),
        wv = param(&write, "version"),
    );
}

/// The local variable holding a field while a struct is decoded: the field's identifier,
/// unless that would shadow a name the generated decoder uses itself.
fn local_ident(name: &str) -> String {
    const TAKEN: &[&str] = &["buf", "version", "flexible", "tag", "field_buf"];
    let ident = field_ident(name);
    if TAKEN.contains(&ident.as_str()) {
        format!("{ident}_value")
    } else {
        ident
    }
}

/// Whether `name` occurs in `code` as a whole identifier.
fn uses_ident(code: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(name).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + name.len()..].chars().next();
        // `self.version` and `version: ..` (a struct field) are not uses of a local.
        !before.is_some_and(|c| is_ident(c) || c == '.')
            && !after.is_some_and(|c| is_ident(c) || c == ':')
    })
}

fn read_body(ctx: &Ctx, fields: &[&Field]) -> String {
    let mut body = flexible_binding(ctx);
    let mut names = Vec::new();
    for f in fields {
        let ident = local_ident(&f.name);
        let ty = rust_type(f);
        if ctx.is_tagged(f) {
            let _ = writeln!(body, "let mut {ident}: {ty} = {};", default_expr(f).0);
        } else {
            let value = match ctx.present(f) {
                Cond::Always => ctx.read_expr(f, "buf"),
                Cond::Expr(e) => format!(
                    "if {e} {{ {} }} else {{ {} }}",
                    ctx.read_expr(f, "buf"),
                    default_expr(f).0
                ),
                Cond::Never => unreachable!("absent fields are filtered out"),
            };
            let _ = writeln!(body, "let {ident}: {ty} = {value};");
        }
        let member = field_ident(&f.name);
        names.push(if member == ident {
            ident
        } else {
            format!("{member}: {ident}")
        });
    }
    if ctx.has_flexible {
        body.push_str("let mut unknown_tagged_fields = Vec::new();\n");
        body.push_str(&when_flexible(ctx, &read_tagged(ctx, fields)));
        names.push("unknown_tagged_fields".into());
    }
    let _ = writeln!(body, "Ok(Self {{ {} }})", names.join(", "));
    body
}

fn tagged_fields<'a>(fields: &[&'a Field]) -> Vec<&'a Field> {
    let mut tagged: Vec<&Field> = fields.iter().copied().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);
    tagged
}

/// Versions in which tagged fields can appear: the flexible ones.
fn tagged_within(ctx: &Ctx) -> Versions {
    ctx.spec
        .flexible
        .and_then(|f| f.intersect(ctx.valid()))
        .unwrap_or(ctx.valid())
}

fn read_tagged(ctx: &Ctx, fields: &[&Field]) -> String {
    let tagged = tagged_fields(fields);
    if tagged.is_empty() {
        return "read_tagged_fields(buf, &mut unknown_tagged_fields, |_, _| Ok(false))?;\n".into();
    }
    let mut arms = String::new();
    for f in tagged {
        let guard = match cond(f.tagged, tagged_within(ctx)) {
            Cond::Expr(e) => format!(" if {e}"),
            Cond::Always => String::new(),
            Cond::Never => continue,
        };
        let _ = writeln!(
            arms,
            "{}{guard} => {} = {},",
            f.tag.expect("tagged"),
            local_ident(&f.name),
            ctx.read_expr(f, "field_buf")
        );
    }
    format!(
        "read_tagged_fields(buf, &mut unknown_tagged_fields, |tag, field_buf| {{\n\
         match tag {{\n{arms}_ => return Ok(false),\n}}\nOk(true)\n}})?;\n"
    )
}

fn write_body(ctx: &Ctx, fields: &[&Field]) -> String {
    let mut body = flexible_binding(ctx);
    for f in fields.iter().filter(|f| !ctx.is_tagged(f)) {
        let stmt = ctx.write_stmt(f, "s");
        match ctx.present(f) {
            Cond::Always => body.push_str(&stmt),
            Cond::Expr(e) => {
                let _ = write!(body, "if {e} {{ {stmt} }}");
            }
            Cond::Never => {}
        }
        body.push('\n');
    }
    if ctx.has_flexible {
        body.push_str(&when_flexible(ctx, &write_tagged(ctx, fields)));
    }
    body.push_str("Ok(())\n");
    body
}

fn write_tagged(ctx: &Ctx, fields: &[&Field]) -> String {
    let tagged: Vec<(&Field, String)> = tagged_fields(fields)
        .into_iter()
        .filter_map(|f| {
            let value = format!("self.{}", field_ident(&f.name));
            let differs = differs_from_default(f, &value);
            match cond(f.tagged, tagged_within(ctx)) {
                Cond::Never => None,
                Cond::Always => Some((f, differs)),
                Cond::Expr(e) => Some((f, format!("{e} && {differs}"))),
            }
        })
        .collect();
    if tagged.is_empty() {
        return "write_unknown_tagged_fields(s, &self.unknown_tagged_fields)?;\n".into();
    }
    let mut body = String::from("let mut tagged_count = self.unknown_tagged_fields.len();\n");
    for (_, when) in &tagged {
        let _ = writeln!(body, "if {when} {{ tagged_count += 1; }}");
    }
    body.push_str(
        "write_tagged_count(s, tagged_count)?;\n\
         let mut unknown = UnknownTags::new(&self.unknown_tagged_fields);\n",
    );
    for (f, when) in &tagged {
        let tag = f.tag.expect("tagged");
        let len = match ctx.write_expr(f, "n") {
            (e, true) => format!("|n| {e}"),
            (e, false) => format!("|n| {{ {e}; Ok(()) }}"),
        };
        let _ = writeln!(
            body,
            "if {when} {{\nunknown.write_before(s, {tag})?;\n\
             let value_bytes = len_of({len})?;\n\
             write_tag_header(s, {tag}, value_bytes)?;\n{}\n}}",
            ctx.write_stmt(f, "s")
        );
    }
    body.push_str("unknown.write_rest(s)?;\n");
    body
}

fn emit_message_impl(ctx: &Ctx, out: &mut String) {
    let spec = ctx.spec;
    let flexible_min = match spec.flexible.and_then(|f| f.intersect(spec.valid)) {
        Some(f) => format!("Some({})", f.min),
        None => "None".into(),
    };
    let _ = write!(
        out,
        "impl Message for {name} {{\n\
         const NAME: &'static str = {name:?};\n\
         const VALID_VERSIONS: (i16, i16) = ({min}, {max});\n\
         const FLEXIBLE_MIN_VERSION: Option<i16> = {flexible_min};\n\
         }}\n\n",
        name = spec.name,
        min = spec.valid.min,
        max = spec.valid.max,
    );
}

/// The test-only random instance generator of one struct.
fn emit_random(ctx: &Ctx, def: &StructDef, out: &mut String) {
    let mut body = String::new();
    for f in def.fields.iter().filter(|f| ctx.present(f) != Cond::Never) {
        let value = if f.nullable.is_some() {
            format!("rng.opt_value(version, {})", ctx.nullable_now(f))
        } else {
            "rng.value(version)".to_string()
        };
        let value = match ctx.present(f) {
            Cond::Expr(e) => format!("if {e} {{ {value} }} else {{ {} }}", default_expr(f).0),
            _ => value,
        };
        let _ = writeln!(body, "{}: {value},", field_ident(&f.name));
    }
    if ctx.has_flexible {
        let flexible = match &ctx.flexible {
            Cond::Expr(e) => e.clone(),
            c => cond_bool(c),
        };
        let _ = writeln!(body, "unknown_tagged_fields: rng.unknown_tags({flexible}),");
    }
    let (rng, version) = (
        if uses_ident(&body, "rng") {
            "rng"
        } else {
            "_rng"
        },
        if uses_ident(&body, "version") {
            "version"
        } else {
            "_version"
        },
    );
    let _ = write!(
        out,
        "impl Random for {name} {{\n\
         fn random({rng}: &mut TestRng, {version}: i16) -> Self {{\n\
         Self {{\n{body}}}\n}}\n}}\n\n",
        name = def.name
    );
}

pub fn module_name(spec: &Spec) -> String {
    snake(&spec.name)
}

/// The whole source file of one message module.
pub fn emit_message(spec: &Spec, rel_spec_path: &str) -> String {
    let flexible = cond(spec.flexible, spec.valid);
    let ctx = Ctx {
        spec,
        has_flexible: flexible != Cond::Never,
        flexible,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by `cargo xtask codegen` from {rel_spec_path}. Do not edit.\n"
    );
    let _ = writeln!(out, "//! {}", describe(spec));
    out.push_str("\nuse crate::codec::*;\nuse bytes::Bytes;\n\n");
    for (i, def) in spec.structs.iter().enumerate() {
        emit_struct(&ctx, def, i == 0, &mut out);
    }
    out.push_str(
        "#[cfg(test)]\nmod random {\nuse super::*;\nuse crate::testing::{Random, TestRng};\n\n",
    );
    for def in &spec.structs {
        emit_random(&ctx, def, &mut out);
    }
    out.push_str("}\n");
    out
}

pub fn version_text(v: Option<Versions>) -> String {
    match v {
        None => "none".into(),
        Some(v) if v.max == i16::MAX => format!("{}+", v.min),
        Some(v) if v.min == v.max => v.min.to_string(),
        Some(v) => format!("{}-{}", v.min, v.max),
    }
}

fn describe(spec: &Spec) -> String {
    let kind = match spec.kind {
        Kind::Request => "request",
        Kind::Response => "response",
        Kind::Header => "header",
        Kind::Data => "data record",
    };
    let key = spec
        .api_key
        .map_or(String::new(), |k| format!(", API key {k}"));
    format!(
        "`{}`: Kafka {kind}{key}, versions {}, flexible versions {}.",
        spec.name,
        version_text(Some(spec.valid)),
        version_text(spec.flexible)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::spec::{parse_versions, strip_comments};

    #[test]
    fn names_become_snake_case_identifiers() {
        assert_eq!(snake("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake("KRaftVersionRecord"), "k_raft_version_record");
        assert_eq!(snake("subscription"), "subscription");
        assert_eq!(snake("IsrReplicas"), "isr_replicas");
        assert_eq!(field_ident("Type"), "r#type");
        assert_eq!(field_ident("Match"), "r#match");
        assert_eq!(local_ident("Version"), "version_value");
    }

    #[test]
    fn version_ranges_parse() {
        let v = |min, max| Some(Versions { min, max });
        assert_eq!(parse_versions("3+"), Ok(v(3, i16::MAX)));
        assert_eq!(parse_versions("0-4"), Ok(v(0, 4)));
        assert_eq!(parse_versions("7"), Ok(v(7, 7)));
        assert_eq!(parse_versions("none"), Ok(None));
        assert!(parse_versions("x+").is_err());
    }

    #[test]
    fn conditions_simplify_against_the_valid_range() {
        let valid = Versions { min: 0, max: 11 };
        let r = |min, max| Some(Versions { min, max });
        assert_eq!(cond(r(0, i16::MAX), valid), Cond::Always);
        assert_eq!(
            cond(r(3, i16::MAX), valid),
            Cond::Expr("version >= 3".into())
        );
        assert_eq!(cond(r(0, 2), valid), Cond::Expr("version <= 2".into()));
        assert_eq!(
            cond(r(3, 5), valid),
            Cond::Expr("(3..=5).contains(&version)".into())
        );
        assert_eq!(cond(r(12, i16::MAX), valid), Cond::Never);
        assert_eq!(cond(None, valid), Cond::Never);
    }

    #[test]
    fn comments_are_stripped_but_not_inside_strings() {
        let text = "// licence\n{ \"a\": \"http://x\" } // note\n";
        assert_eq!(strip_comments(text), "\n{ \"a\": \"http://x\" } // note");
    }

    #[test]
    fn identifier_use_ignores_fields_and_longer_names() {
        assert!(uses_ident("read(buf, version)", "version"));
        assert!(!uses_ident("self.version; k_raft_version", "version"));
        assert!(!uses_ident("Self { version: v }", "version"));
    }
}
