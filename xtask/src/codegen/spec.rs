//! The message-spec model: what one Kafka JSON spec file says, parsed into Rust values.

use serde_json::{Map, Value};

/// An inclusive version range; `max == i16::MAX` means open-ended ("3+").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub fn contains(self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }

    pub fn intersect(self, other: Versions) -> Option<Versions> {
        let v = Versions {
            min: self.min.max(other.min),
            max: self.max.min(other.max),
        };
        (v.min <= v.max).then_some(v)
    }
}

/// Parses "3+", "0-4", "7" or "none" (`None`).
pub fn parse_versions(text: &str) -> Result<Option<Versions>, String> {
    let text = text.trim();
    let num = |s: &str| {
        s.trim()
            .parse::<i16>()
            .map_err(|e| format!("bad version {s:?}: {e}"))
    };
    if text == "none" {
        Ok(None)
    } else if let Some(min) = text.strip_suffix('+') {
        Ok(Some(Versions {
            min: num(min)?,
            max: i16::MAX,
        }))
    } else if let Some((min, max)) = text.split_once('-') {
        Ok(Some(Versions {
            min: num(min)?,
            max: num(max)?,
        }))
    } else {
        let v = num(text)?;
        Ok(Some(Versions { min: v, max: v }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Bool,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    F64,
    Uuid,
}

impl Prim {
    pub fn rust(self) -> &'static str {
        match self {
            Prim::Bool => "bool",
            Prim::I8 => "i8",
            Prim::I16 => "i16",
            Prim::U16 => "u16",
            Prim::I32 => "i32",
            Prim::U32 => "u32",
            Prim::I64 => "i64",
            Prim::F64 => "f64",
            Prim::Uuid => "Uuid",
        }
    }

    pub fn size(self) -> usize {
        match self {
            Prim::Bool | Prim::I8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 => 4,
            Prim::I64 | Prim::F64 => 8,
            Prim::Uuid => 16,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Prim(Prim),
    String,
    Bytes,
    Records,
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(text: &str) -> Result<Ty, String> {
        if let Some(elem) = text.strip_prefix("[]") {
            return Ok(Ty::Array(Box::new(Ty::parse(elem)?)));
        }
        let prim = |p| Ok(Ty::Prim(p));
        match text {
            "bool" => prim(Prim::Bool),
            "int8" => prim(Prim::I8),
            "int16" => prim(Prim::I16),
            "uint16" => prim(Prim::U16),
            "int32" => prim(Prim::I32),
            "uint32" => prim(Prim::U32),
            "int64" => prim(Prim::I64),
            "float64" => prim(Prim::F64),
            "uuid" => prim(Prim::Uuid),
            "string" => Ok(Ty::String),
            "bytes" => Ok(Ty::Bytes),
            "records" => Ok(Ty::Records),
            s if s.starts_with(|c: char| c.is_ascii_uppercase()) => Ok(Ty::Struct(s.to_string())),
            s => Err(format!("unknown type {s:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    /// The spec's PascalCase name.
    pub name: String,
    pub ty: Ty,
    pub versions: Versions,
    pub nullable: Option<Versions>,
    pub tag: Option<u32>,
    pub tagged: Option<Versions>,
    /// The spec's default, as text ("null", "-1", "0x7fffffff", "true", "").
    pub default: Option<String>,
    /// A field-level `flexibleVersions` override (only "none" is used, by ClientId).
    pub flexible_override: Option<Option<Versions>>,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub file_name: String,
    pub name: String,
    pub kind: Kind,
    pub api_key: Option<i16>,
    pub valid: Versions,
    pub flexible: Option<Versions>,
    pub latest_unstable: bool,
    /// The message itself, then every nested and common struct, in spec order.
    pub structs: Vec<StructDef>,
}

/// Removes `//` comments (the specs' licence headers and notes); the specs never put `//`
/// inside a string except in URLs, which only appear in comments.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn default_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_field(obj: &Value, structs: &mut Vec<StructDef>) -> Result<Field, String> {
    let obj = obj.as_object().ok_or("field is not an object")?;
    let name = str_of(obj, "name").ok_or("field without name")?.to_string();
    let ty = Ty::parse(str_of(obj, "type").ok_or("field without type")?)?;
    let tagged = str_of(obj, "taggedVersions")
        .map(parse_versions)
        .transpose()?
        .flatten();
    // A tagged field may omit "versions"; it then exists in its tagged versions.
    let versions = match str_of(obj, "versions") {
        Some(text) => parse_versions(text)?,
        None => tagged,
    }
    .ok_or_else(|| format!("field {name} has no versions"))?;
    let nullable = str_of(obj, "nullableVersions")
        .map(parse_versions)
        .transpose()?
        .flatten();
    let tag = obj
        .get("tag")
        .and_then(Value::as_u64)
        .map(|t| u32::try_from(t).map_err(|_| format!("tag {t} too large")))
        .transpose()?;
    let flexible_override = str_of(obj, "flexibleVersions")
        .map(parse_versions)
        .transpose()?;
    if let Some(children) = obj.get("fields").and_then(Value::as_array) {
        let struct_name = match &ty {
            Ty::Struct(n) => n.clone(),
            Ty::Array(e) => match &**e {
                Ty::Struct(n) => n.clone(),
                _ => return Err(format!("field {name} has fields but no struct type")),
            },
            _ => return Err(format!("field {name} has fields but no struct type")),
        };
        let fields = parse_fields(children, structs)?;
        structs.push(StructDef {
            name: struct_name,
            fields,
        });
    }
    Ok(Field {
        name,
        ty,
        versions,
        nullable,
        tag,
        tagged,
        default: obj.get("default").and_then(default_text),
        flexible_override,
    })
}

fn parse_fields(list: &[Value], structs: &mut Vec<StructDef>) -> Result<Vec<Field>, String> {
    list.iter().map(|f| parse_field(f, structs)).collect()
}

/// Parses one spec file's text.
pub fn parse_spec(file_name: &str, text: &str) -> Result<Spec, String> {
    let json: Value = serde_json::from_str(&strip_comments(text))
        .map_err(|e| format!("{file_name}: invalid JSON: {e}"))?;
    let obj = json.as_object().ok_or("spec is not an object")?;
    let name = str_of(obj, "name").ok_or("spec without name")?.to_string();
    let kind = match str_of(obj, "type") {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        Some("header") => Kind::Header,
        Some("data") => Kind::Data,
        other => return Err(format!("{file_name}: unknown type {other:?}")),
    };
    let valid = parse_versions(str_of(obj, "validVersions").ok_or("no validVersions")?)?
        .ok_or("validVersions none")?;
    let flexible = parse_versions(str_of(obj, "flexibleVersions").unwrap_or("none"))?;
    let mut nested = Vec::new();
    let fields = parse_fields(
        obj.get("fields")
            .and_then(Value::as_array)
            .map_or(&[], |v| v),
        &mut nested,
    )?;
    let mut structs = vec![StructDef {
        name: name.clone(),
        fields,
    }];
    // Nested structs were pushed children-first; present them parent-first.
    structs.extend(reorder_parent_first(&structs[0].fields, nested));
    for common in obj
        .get("commonStructs")
        .and_then(Value::as_array)
        .map_or(&[][..], |v| v)
    {
        let cname = common
            .get("name")
            .and_then(Value::as_str)
            .ok_or("common struct without name")?;
        let mut inner = Vec::new();
        let cfields = parse_fields(
            common
                .get("fields")
                .and_then(Value::as_array)
                .map_or(&[], |v| v),
            &mut inner,
        )?;
        structs.push(StructDef {
            name: cname.to_string(),
            fields: cfields,
        });
        structs.extend(inner);
    }
    Ok(Spec {
        file_name: file_name.to_string(),
        name,
        kind,
        api_key: obj
            .get("apiKey")
            .and_then(Value::as_i64)
            .map(|k| i16::try_from(k).map_err(|_| "apiKey out of range"))
            .transpose()?,
        valid,
        flexible,
        latest_unstable: obj
            .get("latestVersionUnstable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        structs,
    })
}

fn reorder_parent_first(fields: &[Field], mut pool: Vec<StructDef>) -> Vec<StructDef> {
    let mut out = Vec::new();
    visit(fields, &mut pool, &mut out);
    out.extend(pool);
    out
}

fn visit(fields: &[Field], pool: &mut Vec<StructDef>, out: &mut Vec<StructDef>) {
    for field in fields {
        let name = match &field.ty {
            Ty::Struct(n) => n,
            Ty::Array(e) => match &**e {
                Ty::Struct(n) => n,
                _ => continue,
            },
            _ => continue,
        };
        if let Some(i) = pool.iter().position(|s| &s.name == name) {
            let def = pool.remove(i);
            let children = def.fields.clone();
            out.push(def);
            visit(&children, pool, out);
        }
    }
}
