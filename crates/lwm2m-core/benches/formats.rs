//! Encode/decode of a Device object instance (/3/0) in every value format.
//! Run: `cargo bench -p lwm2m-core --bench formats`.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lwm2m_core::format::{self, ContentFormat};
use lwm2m_core::model::ModelRegistry;
use lwm2m_core::node::{InstanceNode, Node, ResourceNode};
use lwm2m_core::path::Path;
use lwm2m_core::value::Value;

fn device() -> Node {
    Node::Instance(InstanceNode::new(
        0,
        [
            ResourceNode::single(0, Value::String("Open Mobile Alliance".into())),
            ResourceNode::single(1, Value::String("Lightweight M2M Client".into())),
            ResourceNode::single(2, Value::String("345000123".into())),
            ResourceNode::single(3, Value::String("1.0".into())),
            ResourceNode::multiple(6, [(0, Value::Integer(1)), (1, Value::Integer(5))]),
            ResourceNode::multiple(7, [(0, Value::Integer(3800)), (1, Value::Integer(5000))]),
            ResourceNode::multiple(8, [(0, Value::Integer(125)), (1, Value::Integer(900))]),
            ResourceNode::single(9, Value::Integer(100)),
            ResourceNode::single(10, Value::Integer(15)),
            ResourceNode::multiple(11, [(0, Value::Integer(0))]),
            ResourceNode::single(13, Value::Time(1367491215)),
            ResourceNode::single(14, Value::String("+02:00".into())),
            ResourceNode::single(16, Value::String("U".into())),
        ],
    ))
}

fn bench(c: &mut Criterion) {
    let models = ModelRegistry::builtin();
    let path = Path::instance(3, 0);
    let node = device();
    for fmt in [
        ContentFormat::Tlv,
        ContentFormat::SenmlJson,
        ContentFormat::SenmlCbor,
        ContentFormat::Lwm2mJson,
    ] {
        let bytes = format::encode(fmt, &path, &node).expect("device encodes");
        let mut g = c.benchmark_group(format!("device/{}", fmt.name()));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("encode", |b| {
            b.iter(|| format::encode(fmt, black_box(&path), black_box(&node)).unwrap())
        });
        g.bench_function("decode", |b| {
            b.iter(|| format::decode(fmt, black_box(&path), black_box(&bytes), &models).unwrap())
        });
        g.finish();
    }
    // Single-value formats: the Device's manufacturer (/3/0/0) and battery level (/3/0/9).
    for (fmt, p, v) in [
        (
            ContentFormat::Text,
            Path::resource(3, 0, 0),
            Value::String("Open Mobile Alliance".into()),
        ),
        (ContentFormat::Cbor, Path::resource(3, 0, 9), Value::Integer(100)),
        (
            ContentFormat::Opaque,
            Path::resource(5, 0, 0),
            Value::Opaque(vec![0xA5; 512]),
        ),
    ] {
        let node = Node::Resource(ResourceNode::single(p.resource_id().unwrap(), v));
        let bytes = format::encode(fmt, &p, &node).expect("value encodes");
        let mut g = c.benchmark_group(format!("single/{}", fmt.name()));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function("encode", |b| {
            b.iter(|| format::encode(fmt, black_box(&p), black_box(&node)).unwrap())
        });
        g.bench_function("decode", |b| {
            b.iter(|| format::decode(fmt, black_box(&p), black_box(&bytes), &models).unwrap())
        });
        g.finish();
    }
    // Link format: a typical registration payload.
    let reg = br#"</>;rt="oma.lwm2m";ct="110 112",</1/0>,</3/0>,</4/0>,</5>,</3303>;ver=1.1,</3303/0>,</3303/1>"#;
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Bytes(reg.len() as u64));
    g.bench_function("parse_registration", |b| {
        b.iter(|| format::link::parse_registration(black_box(reg)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
