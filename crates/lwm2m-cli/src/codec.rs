//! `lwm2m codec`: decode a payload to JSON, or encode JSON to a payload.
//!
//! The JSON form maps each resource or resource-instance path to its value:
//! numbers, booleans and strings as such; Opaque as `{"base64": "..."}`; Objlnk as `"O:I"`;
//! Time as integer seconds (the helpers live in `lwm2m_web::json`, shared with the REST API). Link format maps
//! each link target to its parameters.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use lwm2m_core::format::{self, link, ContentFormat};
use lwm2m_core::model::{ModelRegistry, Models};
use lwm2m_core::node::{Node, Record};
use lwm2m_core::path::Path;
use lwm2m_web::json::{json_to_value, value_to_json};
use serde_json::{Map, Value as Json};

#[derive(Args, Debug)]
pub struct CodecArgs {
    #[command(subcommand)]
    op: CodecOp,
}

#[derive(Subcommand, Debug)]
enum CodecOp {
    /// Decode a payload and print it as JSON (path -> value).
    ///
    /// Example: lwm2m codec decode --format tlv --path /3/0/9 --hex "c1 09 64"
    Decode {
        #[command(flatten)]
        common: Common,
        /// The payload as hex (spaces and colons allowed). Without it the raw payload is read from stdin.
        #[arg(long, value_name = "HEX")]
        hex: Option<String>,
        /// Print a list of records with their timestamps instead of a path -> value object
        /// (SenML and LwM2M JSON only; needed when one path has several timestamped values).
        #[arg(long)]
        records: bool,
    },
    /// Read JSON (path -> value) on stdin and print the encoded payload as hex.
    ///
    /// Example: echo '{"/3/0/9": 100}' | lwm2m codec encode --format tlv --path /3/0/9
    Encode {
        #[command(flatten)]
        common: Common,
        /// Write the raw bytes to stdout instead of hex.
        #[arg(long)]
        raw: bool,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// Content format: text, opaque, cbor, tlv, lwm2m-json, senml-json, senml-cbor, link (or its CoAP number).
    #[arg(long, short = 'f', value_name = "F")]
    format: ContentFormat,
    /// The LwM2M path the payload is for, e.g. /3/0 or /3/0/6/1 (`/` for composite SenML).
    #[arg(long, short = 'p', value_name = "P", default_value = "/")]
    path: Path,
    /// A directory of extra OMA DDF XML object models, loaded on top of the built-in ones.
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
}

pub fn run(args: CodecArgs) -> Result<()> {
    match args.op {
        CodecOp::Decode { common, hex, records } => {
            let models = load_models(&common)?;
            let payload = match hex {
                Some(h) => parse_hex(&h)?,
                None => read_stdin()?,
            };
            let json = decode(common.format, &common.path, &payload, &models, records)?;
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        CodecOp::Encode { common, raw } => {
            let models = load_models(&common)?;
            let input = read_stdin()?;
            let json: Json = serde_json::from_slice(&input)
                .context("stdin is not valid JSON; expected an object such as {\"/3/0/9\": 100}")?;
            let bytes = encode(common.format, &common.path, &json, &models)?;
            let mut out = std::io::stdout().lock();
            if raw {
                out.write_all(&bytes)?;
            } else {
                writeln!(out, "{}", hex::encode(&bytes))?;
            }
            Ok(())
        }
    }
}

fn load_models(common: &Common) -> Result<ModelRegistry> {
    let mut models = ModelRegistry::builtin();
    if let Some(dir) = &common.model_dir {
        models
            .load_dir(dir)
            .with_context(|| format!("loading object models from {}", dir.display()))?;
    }
    Ok(models)
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no input: pass --hex HEX or pipe the payload on stdin");
    }
    let mut buf = Vec::new();
    stdin.read_to_end(&mut buf).context("reading stdin")?;
    Ok(buf)
}

/// Parses hex with optional whitespace, `:` separators and a `0x` prefix.
fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let t = s.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let clean: String = t.chars().filter(|c| !c.is_whitespace() && *c != ':').collect();
    hex::decode(&clean).map_err(|e| anyhow!("--hex is not valid hex ({e}); write bytes like \"c1 09 64\""))
}

/// Decodes `payload` and renders it as JSON.
pub fn decode(format: ContentFormat, path: &Path, payload: &[u8], models: &dyn Models, records: bool) -> Result<Json> {
    if format == ContentFormat::Link {
        let links = link::parse(payload)?;
        let mut map = Map::new();
        for l in links {
            let mut params = Map::new();
            for p in l.params {
                params.insert(p.name, p.value.map(Json::String).unwrap_or(Json::Null));
            }
            map.insert(l.target, Json::Object(params));
        }
        return Ok(Json::Object(map));
    }
    let recs: Vec<Record> = if records || (path.is_root() && format.is_record_based()) {
        if !format.is_record_based() {
            bail!(
                "--records needs a record format (senml-json, senml-cbor, lwm2m-json), not {}",
                format.name()
            );
        }
        let recs = format::decode_records(format, path, payload, models)?;
        if let Some(r) = recs.iter().find(|r| !path.starts(&r.path)) {
            bail!("{} in the payload is not under --path {path}", r.path);
        }
        recs
    } else if path.is_root() {
        bail!(
            "{} needs a target path: pass --path /o, /o/i, /o/i/r or /o/i/r/ri",
            format.name()
        );
    } else {
        format::decode(format, path, payload, models)?.to_records(path)
    };
    if records {
        return Ok(Json::Array(
            recs.iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("path".into(), Json::String(r.path.to_string()));
                    m.insert("value".into(), value_to_json(&r.value));
                    if let Some(t) = r.time {
                        m.insert("time".into(), lwm2m_web::json::float_json(t));
                    }
                    Json::Object(m)
                })
                .collect(),
        ));
    }
    let mut map = Map::new();
    for r in &recs {
        if map.insert(r.path.to_string(), value_to_json(&r.value)).is_some() {
            bail!(
                "{} has several (timestamped) values; pass --records to list them all",
                r.path
            );
        }
    }
    Ok(Json::Object(map))
}

/// Encodes the codec JSON form in `format` at `path`.
pub fn encode(format: ContentFormat, path: &Path, json: &Json, models: &dyn Models) -> Result<Vec<u8>> {
    let obj = json
        .as_object()
        .ok_or_else(|| anyhow!("input must be a JSON object mapping paths to values"))?;
    if format == ContentFormat::Link {
        let mut links = Vec::new();
        for (target, params) in obj {
            let params = params
                .as_object()
                .ok_or_else(|| anyhow!("link {target}: parameters must be an object like {{\"dim\": \"2\"}}"))?;
            let mut ps = Vec::new();
            for (name, v) in params {
                let value = match v {
                    Json::Null => None,
                    Json::String(s) => Some(s.clone()),
                    Json::Number(n) => Some(n.to_string()),
                    other => bail!("link {target}: parameter {name} must be a string, number or null, not {other}"),
                };
                ps.push(link::LinkParam {
                    name: name.clone(),
                    value,
                });
            }
            links.push(link::Link {
                target: target.clone(),
                params: ps,
            });
        }
        return Ok(link::write(&links).into_bytes());
    }
    let mut recs = Vec::with_capacity(obj.len());
    for (p, v) in obj {
        let rp: Path = p.parse().map_err(|e| anyhow!("key {p:?} is not an LwM2M path: {e}"))?;
        if rp.len() < 3 {
            bail!("key {p}: values belong to resource or resource-instance paths (/o/i/r or /o/i/r/ri)");
        }
        if !path.starts(&rp) {
            bail!("key {rp} is not under --path {path}");
        }
        let value = json_to_value(&rp, v, format::value_type(models, &rp))?;
        recs.push(Record::new(rp, value));
    }
    recs.sort_by_key(|r| r.path);
    if path.is_root() {
        if !format.is_record_based() {
            bail!(
                "{} needs a target path: pass --path /o, /o/i, /o/i/r or /o/i/r/ri",
                format.name()
            );
        }
        return Ok(format::encode_records(format, path, &recs)?);
    }
    let node = Node::from_records(format, path, &recs, models)?;
    Ok(format::encode(format, path, &node)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lwm2m_core::value::{DataType, Value};

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("c1 09:64").unwrap(), vec![0xc1, 0x09, 0x64]);
        assert_eq!(parse_hex("0xC109").unwrap(), vec![0xc1, 0x09]);
        assert!(parse_hex("c1 0").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn json_values() {
        let p = Path::resource(3, 0, 9);
        assert_eq!(
            json_to_value(&p, &serde_json::json!(5), Some(DataType::Float)).unwrap(),
            Value::Float(5.0)
        );
        assert_eq!(
            json_to_value(&p, &serde_json::json!("3:1"), Some(DataType::Objlnk)).unwrap(),
            Value::Objlnk(lwm2m_core::ObjLink::new(3, 1))
        );
        assert_eq!(
            json_to_value(&p, &serde_json::json!({"base64": "AQID"}), None).unwrap(),
            Value::Opaque(vec![1, 2, 3])
        );
        assert!(json_to_value(&p, &serde_json::json!([1]), None).is_err());
        assert!(json_to_value(&p, &serde_json::json!(-1), Some(DataType::UnsignedInteger)).is_err());
        assert_eq!(
            value_to_json(&Value::Opaque(vec![1, 2, 3])),
            serde_json::json!({"base64": "AQID"})
        );
    }
}
