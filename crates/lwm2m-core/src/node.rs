//! The LwM2M node tree and flat records.
//!
//! A [`Node`] is the content at one path: an object, an object instance, a resource (single or
//! multiple) or one resource instance. A [`Record`] is one leaf value with its full path and an
//! optional timestamp; SenML and LwM2M JSON payloads are lists of records. [`Node::to_records`]
//! and [`Node::from_records`] convert between the two.

use std::collections::BTreeMap;

use crate::error::FormatError;
use crate::format::ContentFormat;
use crate::model::Models;
use crate::path::Path;
use crate::value::Value;

/// The content of a resource: one value, or resource instances by id.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourceValue {
    Single(Value),
    Multiple(BTreeMap<u16, Value>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceNode {
    pub id: u16,
    pub value: ResourceValue,
}

impl ResourceNode {
    pub fn single(id: u16, value: Value) -> ResourceNode {
        ResourceNode {
            id,
            value: ResourceValue::Single(value),
        }
    }
    pub fn multiple(id: u16, values: impl IntoIterator<Item = (u16, Value)>) -> ResourceNode {
        ResourceNode {
            id,
            value: ResourceValue::Multiple(values.into_iter().collect()),
        }
    }
    pub fn is_multiple(&self) -> bool {
        matches!(self.value, ResourceValue::Multiple(_))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceNode {
    pub id: u16,
    pub resources: BTreeMap<u16, ResourceNode>,
}

impl InstanceNode {
    pub fn new(id: u16, resources: impl IntoIterator<Item = ResourceNode>) -> InstanceNode {
        InstanceNode {
            id,
            resources: resources.into_iter().map(|r| (r.id, r)).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectNode {
    pub id: u16,
    pub instances: BTreeMap<u16, InstanceNode>,
}

impl ObjectNode {
    pub fn new(id: u16, instances: impl IntoIterator<Item = InstanceNode>) -> ObjectNode {
        ObjectNode {
            id,
            instances: instances.into_iter().map(|i| (i.id, i)).collect(),
        }
    }
}

/// The content at one LwM2M path.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Object(ObjectNode),
    Instance(InstanceNode),
    Resource(ResourceNode),
    ResourceInstance { id: u16, value: Value },
}

/// One leaf value with its absolute path and, for timestamped data (SenML `bt`+`t`, LwM2M JSON),
/// its time in seconds. Times below 2^28 are relative to "now" (RFC 8428); the codecs report them
/// as they are and leave the interpretation to the caller, which owns the clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub path: Path,
    pub value: Value,
    pub time: Option<f64>,
}

impl Record {
    pub fn new(path: Path, value: Value) -> Record {
        Record {
            path,
            value,
            time: None,
        }
    }
}

impl Node {
    /// The id of this node (object id, instance id, resource id or resource-instance id).
    pub fn id(&self) -> u16 {
        match self {
            Node::Object(o) => o.id,
            Node::Instance(i) => i.id,
            Node::Resource(r) => r.id,
            Node::ResourceInstance { id, .. } => *id,
        }
    }

    /// The number of path segments a node of this kind sits at (1 = object ... 4 = resource instance).
    pub fn depth(&self) -> usize {
        match self {
            Node::Object(_) => 1,
            Node::Instance(_) => 2,
            Node::Resource(_) => 3,
            Node::ResourceInstance { .. } => 4,
        }
    }

    /// Checks that this node fits at `path` (same depth, same last id).
    pub fn fits(&self, path: &Path) -> bool {
        path.len() == self.depth() && path.ids().last() == Some(&self.id())
    }

    /// The leaf values of this node, with absolute paths, in path order. `path` is this node's own path.
    pub fn to_records(&self, path: &Path) -> Vec<Record> {
        let mut out = Vec::new();
        let ids = path.ids();
        let push_res = |out: &mut Vec<Record>, o: u16, i: u16, r: &ResourceNode| match &r.value {
            ResourceValue::Single(v) => out.push(Record::new(Path::resource(o, i, r.id), v.clone())),
            ResourceValue::Multiple(m) => {
                for (ri, v) in m {
                    out.push(Record::new(Path::resource_instance(o, i, r.id, *ri), v.clone()));
                }
            }
        };
        match self {
            Node::Object(obj) => {
                for inst in obj.instances.values() {
                    for r in inst.resources.values() {
                        push_res(&mut out, obj.id, inst.id, r);
                    }
                }
            }
            Node::Instance(inst) => {
                let o = ids.first().copied().unwrap_or(0);
                for r in inst.resources.values() {
                    push_res(&mut out, o, inst.id, r);
                }
            }
            Node::Resource(r) => {
                let (o, i) = (ids.first().copied().unwrap_or(0), ids.get(1).copied().unwrap_or(0));
                push_res(&mut out, o, i, r);
            }
            Node::ResourceInstance { value, .. } => out.push(Record::new(*path, value.clone())),
        }
        out
    }

    /// Builds the node at `path` from leaf records (resource or resource-instance paths under `path`).
    ///
    /// A resource-instance record makes its resource Multiple; a resource record makes it Single. When
    /// the model says a resource is multiple, a record on the resource path itself is an error, and a
    /// read of an empty multiple resource (`path` is that resource, no records) gives an empty Multiple.
    /// Record times are ignored here. `format` only labels errors.
    pub fn from_records<'a>(
        format: ContentFormat,
        path: &Path,
        records: impl IntoIterator<Item = &'a Record>,
        models: &dyn Models,
    ) -> Result<Node, FormatError> {
        let ids = path.ids();
        if ids.is_empty() {
            return Err(FormatError::Unsupported {
                format,
                reason: "a node cannot be built at the root path; use records for composite content".into(),
            });
        }
        let mut obj = ObjectNode {
            id: ids[0],
            instances: BTreeMap::new(),
        };
        let mut seen = 0usize;
        for rec in records {
            seen += 1;
            let p = rec.path;
            if !path.starts(&p) || p.len() < 3 {
                return Err(FormatError::UnexpectedPath {
                    format,
                    target: *path,
                    found: p,
                });
            }
            let (i, r) = (p.ids()[1], p.ids()[2]);
            let model_multi = models.resource(ids[0], r).map(|m| m.multiple);
            let inst = obj.instances.entry(i).or_insert_with(|| InstanceNode {
                id: i,
                resources: BTreeMap::new(),
            });
            match p.resource_instance_id() {
                None => {
                    if model_multi == Some(true) {
                        return Err(FormatError::Multiplicity {
                            format,
                            path: p,
                            expected: "multiple",
                            found: "single",
                        });
                    }
                    if inst.resources.contains_key(&r) {
                        return Err(FormatError::Duplicate { format, path: p });
                    }
                    inst.resources.insert(r, ResourceNode::single(r, rec.value.clone()));
                }
                Some(ri) => {
                    if model_multi == Some(false) {
                        return Err(FormatError::Multiplicity {
                            format,
                            path: p,
                            expected: "single",
                            found: "multiple",
                        });
                    }
                    let res = inst.resources.entry(r).or_insert_with(|| ResourceNode::multiple(r, []));
                    match &mut res.value {
                        ResourceValue::Multiple(m) => {
                            if m.insert(ri, rec.value.clone()).is_some() {
                                return Err(FormatError::Duplicate { format, path: p });
                            }
                        }
                        ResourceValue::Single(_) => {
                            return Err(FormatError::Duplicate {
                                format,
                                path: p.parent().unwrap_or(p),
                            })
                        }
                    }
                }
            }
        }
        Ok(match ids.len() {
            1 => Node::Object(obj),
            2 => Node::Instance(obj.instances.remove(&ids[1]).unwrap_or(InstanceNode {
                id: ids[1],
                resources: BTreeMap::new(),
            })),
            3 => {
                let res = obj
                    .instances
                    .remove(&ids[1])
                    .and_then(|mut i| i.resources.remove(&ids[2]));
                match res {
                    Some(r) => Node::Resource(r),
                    None if seen == 0 && models.resource(ids[0], ids[2]).is_some_and(|m| m.multiple) => {
                        Node::Resource(ResourceNode::multiple(ids[2], []))
                    }
                    None => return Err(FormatError::Empty { format, path: *path }),
                }
            }
            _ => {
                let v = obj
                    .instances
                    .remove(&ids[1])
                    .and_then(|mut i| i.resources.remove(&ids[2]))
                    .and_then(|r| match r.value {
                        ResourceValue::Multiple(mut m) => m.remove(&ids[3]),
                        ResourceValue::Single(_) => None,
                    });
                match v {
                    Some(value) => Node::ResourceInstance { id: ids[3], value },
                    None => return Err(FormatError::Empty { format, path: *path }),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoModels;

    fn recs(items: &[(&str, Value)]) -> Vec<Record> {
        items
            .iter()
            .map(|(p, v)| Record::new(p.parse().unwrap(), v.clone()))
            .collect()
    }

    #[test]
    fn records_round_trip_instance() {
        let r = recs(&[
            ("/3/0/0", Value::String("Open Mobile Alliance".into())),
            ("/3/0/6/0", Value::Integer(1)),
            ("/3/0/6/1", Value::Integer(5)),
            ("/3/0/9", Value::Integer(100)),
        ]);
        let p = Path::instance(3, 0);
        let n = Node::from_records(ContentFormat::SenmlJson, &p, &r, &NoModels).unwrap();
        match &n {
            Node::Instance(i) => {
                assert_eq!(i.resources.len(), 3);
                assert!(i.resources[&6].is_multiple());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(n.to_records(&p), r);
        assert!(n.fits(&p));
    }

    #[test]
    fn resource_instance_and_errors() {
        let r = recs(&[("/3/0/6/1", Value::Integer(5))]);
        let p = Path::resource_instance(3, 0, 6, 1);
        assert_eq!(
            Node::from_records(ContentFormat::SenmlJson, &p, &r, &NoModels).unwrap(),
            Node::ResourceInstance {
                id: 1,
                value: Value::Integer(5)
            }
        );
        let outside = Path::instance(4, 0);
        assert!(matches!(
            Node::from_records(ContentFormat::SenmlJson, &outside, &r, &NoModels),
            Err(FormatError::UnexpectedPath { .. })
        ));
        let dup = recs(&[("/3/0/9", Value::Integer(1)), ("/3/0/9", Value::Integer(2))]);
        assert!(matches!(
            Node::from_records(ContentFormat::SenmlJson, &Path::instance(3, 0), &dup, &NoModels),
            Err(FormatError::Duplicate { .. })
        ));
        assert!(matches!(
            Node::from_records(ContentFormat::SenmlJson, &Path::resource(3, 0, 1), &dup, &NoModels),
            Err(FormatError::UnexpectedPath { .. })
        ));
    }
}
