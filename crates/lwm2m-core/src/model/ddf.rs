//! OMA DDF XML loader (object definition files of the OMA LwM2M registry, schema `LWM2M-v1_1.xsd`).
//!
//! A file holds `<LWM2M>` with one or more `<Object>` elements (a bare `<Object>` root is accepted too).
//! Text values are trimmed. What the loader decides where the files are loose:
//!
//! * `ObjectID` and `Item/@ID` are required and must be decimal 0..65535.
//! * `LWM2MVersion` absent or empty means 1.0. `ObjectVersion` absent or empty is taken from the URN
//!   (`urn:oma:lwm2m:oma:3:1.1` gives 1.1), else 1.0.
//! * `MultipleInstances` absent means Single, `Mandatory` absent means Optional, `Operations` absent means
//!   none, `Type` absent means none; a value that is present but not one the schema allows is an error.
//! * A readable or writable resource must have a `Type`.
//! * Two `Item`s with the same ID in one object, or two objects with the same ID and version in one file,
//!   are errors.
//!
//! Every error names the file, the object (and resource) id and what is wrong. The parser never
//! panics: DTDs are refused (roxmltree's default), so entity expansion cannot blow up.

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use roxmltree::{Document, Node};

use super::{DataType, ModelError, ModelRegistry, ObjectModel, Operations, ResourceModel, Version};

/// Parses the DDF XML text `xml`; `file` names it in error messages.
pub fn parse(xml: &str, file: &str) -> Result<Vec<ObjectModel>, ModelError> {
    let doc = Document::parse(xml).map_err(|e| ModelError::Xml {
        file: file.to_string(),
        reason: e.to_string(),
    })?;
    let root = doc.root_element();
    let ddf_err = |reason: String| ModelError::Ddf {
        file: file.to_string(),
        reason,
    };
    let objects: Vec<Node> = match root.tag_name().name() {
        "LWM2M" => root
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "Object")
            .collect(),
        "Object" => vec![root],
        other => {
            return Err(ddf_err(format!(
                "root element is <{}>, expected <LWM2M> holding <Object> elements",
                clip(other)
            )))
        }
    };
    if objects.is_empty() {
        return Err(ddf_err("no <Object> element in <LWM2M>".into()));
    }
    let mut out: Vec<ObjectModel> = Vec::with_capacity(objects.len());
    for (index, obj) in objects.into_iter().enumerate() {
        let model = parse_object(obj, index).map_err(ddf_err)?;
        if out.iter().any(|m| m.id == model.id && m.version == model.version) {
            return Err(ddf_err(format!(
                "object {} version {} is defined twice",
                model.id, model.version
            )));
        }
        out.push(model);
    }
    Ok(out)
}

/// Reads and parses one DDF file.
pub fn load_file(path: &FsPath) -> Result<Vec<ObjectModel>, ModelError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ModelError::Io {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| ModelError::Xml {
        file: file.clone(),
        reason: format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
    })?;
    parse(&text, &file)
}

/// Reads and parses every `*.xml` file of `dir` (not recursing), in file-name order.
/// The first file that fails stops the load.
pub fn load_dir(dir: &FsPath) -> Result<Vec<ObjectModel>, ModelError> {
    let io_err = |e: std::io::Error| ModelError::Io {
        file: dir.display().to_string(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_xml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        if is_xml && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut out = Vec::new();
    for f in files {
        out.extend(load_file(&f)?);
    }
    Ok(out)
}

impl ModelRegistry {
    /// Loads every `*.xml` DDF file of `dir` (see [`load_dir`]) and adds its models, replacing
    /// models of the same object id and version. Returns how many models were added. Nothing is
    /// added when any file fails.
    pub fn load_dir(&mut self, dir: &FsPath) -> Result<usize, ModelError> {
        let models = load_dir(dir)?;
        Ok(self.add_all(models))
    }

    /// Parses DDF XML text (see [`parse`]; `file` names it in errors) and adds its models.
    /// Returns how many models were added.
    pub fn load_xml(&mut self, xml: &str, file: &str) -> Result<usize, ModelError> {
        let models = parse(xml, file)?;
        Ok(self.add_all(models))
    }

    fn add_all(&mut self, models: Vec<ObjectModel>) -> usize {
        let n = models.len();
        for m in models {
            self.add(m);
        }
        n
    }
}

/// At most 64 characters of `s`, for error messages about user input.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if s.chars().nth(64).is_some() {
        out.push('…');
    }
    out
}

/// The first child element named `name`.
fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The trimmed text of an element (all its text, CDATA included).
fn text_of(node: Node) -> String {
    let mut s = String::new();
    for d in node.descendants().filter(|d| d.is_text()) {
        s.push_str(d.text().unwrap_or(""));
    }
    s.trim().to_string()
}

/// The trimmed text of child `name`, `None` when the element is absent.
fn child_text(node: Node, name: &str) -> Option<String> {
    child(node, name).map(text_of)
}

fn parse_id(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `Multiple`/`Single` (case-insensitive); absent means Single.
fn parse_multiple(v: Option<String>, what: &str) -> Result<bool, String> {
    match v {
        None => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("multiple") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("single") => Ok(false),
        Some(s) => Err(format!(
            "{what}: MultipleInstances is {:?}, expected Single or Multiple",
            clip(&s)
        )),
    }
}

/// `Mandatory`/`Optional` (case-insensitive); absent means Optional.
fn parse_mandatory(v: Option<String>, what: &str) -> Result<bool, String> {
    match v {
        None => Ok(false),
        Some(s) if s.eq_ignore_ascii_case("mandatory") => Ok(true),
        Some(s) if s.eq_ignore_ascii_case("optional") => Ok(false),
        Some(s) => Err(format!(
            "{what}: Mandatory is {:?}, expected Mandatory or Optional",
            clip(&s)
        )),
    }
}

/// Version from an element value; absent or empty gives `None`.
fn parse_version(v: Option<String>, elem: &str, what: &str) -> Result<Option<Version>, String> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<Version>()
            .map(Some)
            .map_err(|_| format!("{what}: {elem} is {:?}, expected MAJOR.MINOR such as 1.1", clip(&s))),
    }
}

/// The version at the end of `urn:oma:lwm2m:{kind}:{id}:{version}`, if there is one.
fn urn_version(urn: &str) -> Option<Version> {
    let parts: Vec<&str> = urn.split(':').collect();
    if parts.len() == 6 && parts.first().is_some_and(|p| p.eq_ignore_ascii_case("urn")) {
        parts.get(5)?.parse().ok()
    } else {
        None
    }
}

fn parse_object(obj: Node, index: usize) -> Result<ObjectModel, String> {
    let nth = index + 1;
    let id_text = child_text(obj, "ObjectID").ok_or_else(|| format!("object #{nth}: missing <ObjectID>"))?;
    let id = parse_id(&id_text).ok_or_else(|| {
        format!(
            "object #{nth}: ObjectID {:?} is not a number in 0..65535",
            clip(&id_text)
        )
    })?;
    let what = format!("object {id}");
    let urn = child_text(obj, "ObjectURN").unwrap_or_default();
    let lwm2m_version = parse_version(child_text(obj, "LWM2MVersion"), "LWM2MVersion", &what)?.unwrap_or(Version::V1_0);
    let version = match parse_version(child_text(obj, "ObjectVersion"), "ObjectVersion", &what)? {
        Some(v) => v,
        None => urn_version(&urn).unwrap_or(Version::V1_0),
    };
    let multiple = parse_multiple(child_text(obj, "MultipleInstances"), &what)?;
    let mandatory = parse_mandatory(child_text(obj, "Mandatory"), &what)?;
    let mut resources = BTreeMap::new();
    if let Some(res) = child(obj, "Resources") {
        for item in res
            .children()
            .filter(|n| n.is_element() && n.tag_name().name() == "Item")
        {
            let r = parse_item(item, &what)?;
            let rid = r.id;
            if resources.insert(rid, r).is_some() {
                return Err(format!("{what}: resource {rid} is defined twice"));
            }
        }
    }
    Ok(ObjectModel {
        id,
        name: child_text(obj, "Name").unwrap_or_default(),
        description: child_text(obj, "Description1").unwrap_or_default(),
        version,
        lwm2m_version,
        urn,
        multiple,
        mandatory,
        resources,
    })
}

fn parse_item(item: Node, object: &str) -> Result<ResourceModel, String> {
    let id_text = item
        .attribute("ID")
        .ok_or_else(|| format!("{object}: an <Item> has no ID attribute"))?
        .trim();
    let id = parse_id(id_text)
        .ok_or_else(|| format!("{object}: Item ID {:?} is not a number in 0..65535", clip(id_text)))?;
    let what = format!("{object} resource {id}");
    let ops_text = child_text(item, "Operations").unwrap_or_default();
    let operations = Operations::from_ddf(&ops_text).ok_or_else(|| {
        format!(
            "{what}: Operations is {:?}, expected R, W, RW, E or empty",
            clip(&ops_text)
        )
    })?;
    if operations.execute && (operations.read || operations.write) {
        return Err(format!(
            "{what}: Operations is {:?}; E cannot be combined with R or W",
            clip(&ops_text)
        ));
    }
    let type_text = child_text(item, "Type").unwrap_or_default();
    let data_type = DataType::from_ddf(&type_text).ok_or_else(|| {
        format!(
            "{what}: unknown Type {:?}, expected String, Integer, Unsigned Integer, Float, Boolean, Opaque, Time, \
             Objlnk, Corelnk or empty",
            clip(&type_text)
        )
    })?;
    if data_type == DataType::None && (operations.read || operations.write) {
        return Err(format!(
            "{what}: Operations is {operations} but Type is empty; only executable resources have no type"
        ));
    }
    Ok(ResourceModel {
        id,
        name: child_text(item, "Name").unwrap_or_default(),
        operations,
        multiple: parse_multiple(child_text(item, "MultipleInstances"), &what)?,
        mandatory: parse_mandatory(child_text(item, "Mandatory"), &what)?,
        data_type,
        range: child_text(item, "RangeEnumeration").unwrap_or_default(),
        units: child_text(item, "Units").unwrap_or_default(),
        description: child_text(item, "Description").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Models;
    use proptest::prelude::*;

    fn item(id: &str, ops: &str, multi: &str, ty: &str) -> String {
        format!(
            "<Item ID=\"{id}\"><Name>R{id}</Name><Operations>{ops}</Operations>\
             <MultipleInstances>{multi}</MultipleInstances><Mandatory>Optional</Mandatory><Type>{ty}</Type>\
             <RangeEnumeration></RangeEnumeration><Units></Units><Description></Description></Item>"
        )
    }

    fn object(head: &str, items: &str) -> String {
        format!(
            "<Object ObjectType=\"MODefinition\"><Name>Test</Name><Description1>d</Description1>{head}\
             <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>\
             <Resources>{items}</Resources><Description2></Description2></Object>"
        )
    }

    fn doc(objects: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LWM2M>{objects}</LWM2M>")
    }

    fn err(xml: &str) -> String {
        parse(xml, "t.xml").unwrap_err().to_string()
    }

    #[test]
    fn minimal_object_defaults() {
        let xml = doc(&object(
            "<ObjectID> 42 </ObjectID><ObjectURN>urn:oma:lwm2m:x:42</ObjectURN>",
            &item("0", "RW", "Single", "Float"),
        ));
        let m = parse(&xml, "t.xml").unwrap();
        assert_eq!(m.len(), 1);
        let o = &m[0];
        assert_eq!((o.id, o.version, o.lwm2m_version), (42, Version::V1_0, Version::V1_0));
        assert_eq!(o.urn, "urn:oma:lwm2m:x:42");
        assert_eq!(o.name, "Test");
        assert!(o.multiple && !o.mandatory);
        let r = o.resource(0).unwrap();
        assert_eq!(
            (r.data_type, r.operations, r.multiple),
            (DataType::Float, Operations::RW, false)
        );
    }

    #[test]
    fn version_from_urn_when_object_version_absent() {
        let xml = doc(&object(
            "<ObjectID>42</ObjectID><ObjectURN>urn:oma:lwm2m:x:42:2.3</ObjectURN><LWM2MVersion>1.1</LWM2MVersion>",
            "",
        ));
        let o = &parse(&xml, "t.xml").unwrap()[0];
        assert_eq!(o.version, Version::new(2, 3));
        assert_eq!(o.lwm2m_version, Version::V1_1);
        // An explicit ObjectVersion wins over the URN; an empty one falls back to it.
        let xml = doc(&object(
            "<ObjectID>42</ObjectID><ObjectURN>urn:oma:lwm2m:x:42:2.3</ObjectURN><ObjectVersion>1.4</ObjectVersion>",
            "",
        ));
        assert_eq!(parse(&xml, "t.xml").unwrap()[0].version, Version::new(1, 4));
        let xml = doc(&object(
            "<ObjectID>42</ObjectID><ObjectURN>urn:oma:lwm2m:x:42:2.3</ObjectURN><ObjectVersion></ObjectVersion>",
            "",
        ));
        assert_eq!(parse(&xml, "t.xml").unwrap()[0].version, Version::new(2, 3));
    }

    #[test]
    fn several_objects_cdata_and_trimming() {
        let a = object(
            "<ObjectID>10</ObjectID>",
            "<Item ID=\" 7 \"><Name>\n  Spaced  \n</Name><Operations> R </Operations>\
             <MultipleInstances> multiple </MultipleInstances><Mandatory>MANDATORY</Mandatory>\
             <Type> unsigned integer </Type><Units> s </Units>\
             <Description>  <![CDATA[a <b> c]]> d </Description></Item>",
        );
        let b = object("<ObjectID>11</ObjectID>", &item("0", "E", "Single", ""));
        let m = parse(&doc(&(a + &b)), "t.xml").unwrap();
        assert_eq!(m.iter().map(|o| o.id).collect::<Vec<_>>(), vec![10, 11]);
        let r = m[0].resource(7).unwrap();
        assert_eq!(r.name, "Spaced");
        assert_eq!(r.units, "s");
        assert_eq!(r.description, "a <b> c d");
        assert!(r.multiple && r.mandatory);
        assert_eq!(r.data_type, DataType::UnsignedInteger);
        let e = m[1].resource(0).unwrap();
        assert_eq!((e.operations, e.data_type), (Operations::E, DataType::None));
    }

    #[test]
    fn bare_object_root_and_bom() {
        let xml = format!("\u{feff}{}", object("<ObjectID>9</ObjectID>", ""));
        assert_eq!(parse(&xml, "t.xml").unwrap()[0].id, 9);
    }

    #[test]
    fn errors_name_file_object_resource_and_problem() {
        let cases: Vec<(String, &str)> = vec![
            ("<LWM2M><Object>".into(), "t.xml: not well-formed XML"),
            ("".into(), "not well-formed XML"),
            ("<Foo/>".into(), "root element is <Foo>"),
            ("<LWM2M></LWM2M>".into(), "no <Object>"),
            (doc(&object("", "")), "object #1: missing <ObjectID>"),
            (
                doc(&object("<ObjectID>x1</ObjectID>", "")),
                "ObjectID \"x1\" is not a number",
            ),
            (doc(&object("<ObjectID>65536</ObjectID>", "")), "ObjectID \"65536\""),
            (doc(&object("<ObjectID>-1</ObjectID>", "")), "ObjectID \"-1\""),
            (
                doc(&object("<ObjectID>3</ObjectID>", &item("5", "R", "Single", "Strin"))),
                "object 3 resource 5: unknown Type \"Strin\"",
            ),
            (
                doc(&object(
                    "<ObjectID>3</ObjectID>",
                    &(item("5", "R", "Single", "String") + &item("5", "R", "Single", "String")),
                )),
                "object 3: resource 5 is defined twice",
            ),
            (
                doc(&object(
                    "<ObjectID>3</ObjectID>",
                    &item("70000", "R", "Single", "String"),
                )),
                "object 3: Item ID \"70000\"",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID>", "<Item><Name>x</Name></Item>")),
                "object 3: an <Item> has no ID",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID>", &item("1", "RX", "Single", "String"))),
                "object 3 resource 1: Operations is \"RX\"",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID>", &item("1", "RE", "Single", "String"))),
                "E cannot be combined",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID>", &item("1", "R", "Many", "String"))),
                "object 3 resource 1: MultipleInstances is \"Many\"",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID>", &item("1", "RW", "Single", ""))),
                "object 3 resource 1: Operations is RW but Type is empty",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID><ObjectVersion>1.x</ObjectVersion>", "")),
                "object 3: ObjectVersion is \"1.x\"",
            ),
            (
                doc(&object("<ObjectID>3</ObjectID><LWM2MVersion>one</LWM2MVersion>", "")),
                "object 3: LWM2MVersion is \"one\"",
            ),
            (
                doc(&(object("<ObjectID>3</ObjectID>", "") + &object("<ObjectID>3</ObjectID>", ""))),
                "object 3 version 1.0 is defined twice",
            ),
            (
                "<!DOCTYPE LWM2M [<!ENTITY a \"aaaa\">]><LWM2M>&a;</LWM2M>".into(),
                "not well-formed XML",
            ),
        ];
        for (xml, want) in cases {
            let e = err(&xml);
            assert!(e.starts_with("t.xml: "), "{e}");
            assert!(e.contains(want), "{xml}\n=> {e}\n(wanted {want:?})");
        }
        // The object-level Mandatory is checked too.
        let xml = doc(
            "<Object><ObjectID>4</ObjectID><MultipleInstances>Single</MultipleInstances>\
             <Mandatory>Maybe</Mandatory></Object>",
        );
        assert!(err(&xml).contains("object 4: Mandatory is \"Maybe\""));
    }

    #[test]
    fn files_and_directories() {
        let dir = std::env::temp_dir().join(format!("lwm2m-ddf-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.xml"), doc(&object("<ObjectID>20</ObjectID>", ""))).unwrap();
        std::fs::write(dir.join("a.XML"), doc(&object("<ObjectID>30</ObjectID>", ""))).unwrap();
        std::fs::write(dir.join("notes.txt"), "not xml").unwrap();
        let models = load_dir(&dir).unwrap();
        // Sorted by file name: a.XML first.
        assert_eq!(models.iter().map(|m| m.id).collect::<Vec<_>>(), vec![30, 20]);
        let mut reg = ModelRegistry::new();
        assert_eq!(reg.load_dir(&dir).unwrap(), 2);
        assert_eq!(
            reg.load_xml(&doc(&object("<ObjectID>40</ObjectID>", "")), "inline")
                .unwrap(),
            1
        );
        assert_eq!(reg.object_ids().collect::<Vec<_>>(), vec![20, 30, 40]);
        assert!(reg.object(40).is_some());
        // A broken file fails the whole load and names the file.
        std::fs::write(dir.join("c.xml"), "<LWM2M><Object>").unwrap();
        let e = load_dir(&dir).unwrap_err();
        assert!(
            matches!(&e, ModelError::Xml { file, .. } if file.ends_with("c.xml")),
            "{e}"
        );
        std::fs::write(dir.join("c.xml"), [0x3c, 0xff, 0xfe]).unwrap();
        assert!(load_dir(&dir).unwrap_err().to_string().contains("not valid UTF-8"));
        let missing = dir.join("nope.xml");
        assert!(matches!(load_file(&missing), Err(ModelError::Io { .. })));
        assert!(matches!(load_dir(&dir.join("nodir")), Err(ModelError::Io { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn type_strategy() -> impl Strategy<Value = DataType> {
        prop_oneof![
            Just(DataType::String),
            Just(DataType::Integer),
            Just(DataType::UnsignedInteger),
            Just(DataType::Float),
            Just(DataType::Boolean),
            Just(DataType::Opaque),
            Just(DataType::Time),
            Just(DataType::Objlnk),
            Just(DataType::Corelnk),
        ]
    }

    fn xml_escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(s in "\\PC{0,200}") {
            let _ = parse(&s, "fuzz.xml");
        }

        #[test]
        fn never_panics_on_mutated_ddf(cut in 0usize..2000, junk in "[<>/&a-zA-Z0-9 \"=]{0,8}") {
            let base = doc(&object("<ObjectID>3</ObjectID>", &item("1", "R", "Multiple", "Integer")));
            let cut = cut.min(base.len());
            let (a, b) = base.split_at(cut);
            let _ = parse(&format!("{a}{junk}{b}"), "fuzz.xml");
        }

        #[test]
        fn generated_models_round_trip(
            oid in any::<u16>(),
            ver in (0u16..100, 0u16..100),
            items in proptest::collection::btree_map(
                any::<u16>(),
                (type_strategy(), 0usize..3, any::<bool>(), any::<bool>(), "[ -~]{0,20}"),
                0..12,
            ),
        ) {
            let mut body = String::new();
            for (rid, (ty, ops, multi, mand, name)) in &items {
                body += &format!(
                    "<Item ID=\"{rid}\"><Name>{}</Name><Operations>{}</Operations>\
                     <MultipleInstances>{}</MultipleInstances><Mandatory>{}</Mandatory><Type>{}</Type>\
                     <RangeEnumeration>0..9</RangeEnumeration><Units>m</Units><Description>x</Description></Item>",
                    xml_escape(name),
                    ["R", "W", "RW"][*ops],
                    if *multi { "Multiple" } else { "Single" },
                    if *mand { "Mandatory" } else { "Optional" },
                    ty.ddf_name(),
                );
            }
            let head = format!("<ObjectID>{oid}</ObjectID><ObjectVersion>{}.{}</ObjectVersion>", ver.0, ver.1);
            let m = parse(&doc(&object(&head, &body)), "gen.xml").unwrap();
            prop_assert_eq!(m.len(), 1);
            let o = &m[0];
            prop_assert_eq!(o.id, oid);
            prop_assert_eq!(o.version, Version::new(ver.0, ver.1));
            prop_assert_eq!(o.resources.len(), items.len());
            for (rid, (ty, ops, multi, mand, name)) in &items {
                let r = o.resource(*rid).unwrap();
                prop_assert_eq!(r.data_type, *ty);
                prop_assert_eq!(r.operations, [Operations::R, Operations::W, Operations::RW][*ops]);
                prop_assert_eq!(r.multiple, *multi);
                prop_assert_eq!(r.mandatory, *mand);
                prop_assert_eq!(&r.name, name.trim());
                prop_assert_eq!((r.range.as_str(), r.units.as_str()), ("0..9", "m"));
            }
        }
    }
}
