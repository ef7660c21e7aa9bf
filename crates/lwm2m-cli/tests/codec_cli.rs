//! Runs the real `lwm2m` binary: `lwm2m codec decode/encode` for every format.
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn lwm2m(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lwm2m"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the lwm2m binary starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok_json(out: Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn ok_text(out: Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Digest §8.5 example 1: Read /3/0 in TLV.
const DEVICE_TLV: &str = "C800144F70656E204D6F62696C6520416C6C69616E6365\
C801164C69676874776569676874204D324D20436C69656E74\
C80209333435303030313233C303312E30\
86064100014101058807084200 0ED842011388\
8708 41007D42010384 C10964 C10A0F 830B410000 C40D5182428F C60E2B30323A3030 C11055";

#[test]
fn decode_tlv_device_instance() {
    let hex = DEVICE_TLV.replace(' ', "");
    let json = ok_json(lwm2m(
        &["codec", "decode", "--format", "tlv", "--path", "/3/0", "--hex", &hex],
        b"",
    ));
    assert_eq!(json["/3/0/0"], "Open Mobile Alliance");
    assert_eq!(json["/3/0/1"], "Lightweight M2M Client");
    assert_eq!(json["/3/0/6/1"], 5);
    assert_eq!(json["/3/0/7/0"], 3800);
    assert_eq!(json["/3/0/13"], 1367491215);
    assert_eq!(json["/3/0/16"], "U");
    assert_eq!(json.as_object().unwrap().len(), 16);
}

#[test]
fn every_value_format_round_trips_through_the_cli() {
    let input = serde_json::json!({
        "/3/0/0": "Open Mobile Alliance",
        "/3/0/6/0": 1,
        "/3/0/6/1": 5,
        "/3/0/9": 100,
        "/3/0/13": 1367491215,
        "/3/0/16": "U"
    });
    let text = input.to_string();
    for f in ["tlv", "senml-json", "senml-cbor", "lwm2m-json"] {
        let hex = ok_text(lwm2m(
            &["codec", "encode", "--format", f, "--path", "/3/0"],
            text.as_bytes(),
        ));
        let back = ok_json(lwm2m(
            &["codec", "decode", "--format", f, "--path", "/3/0", "--hex", &hex],
            b"",
        ));
        assert_eq!(back, input, "format {f}");
    }
}

#[test]
fn single_value_formats_and_resource_instances() {
    // DSE-001: one instance of a multi-instance resource, in every format that carries one value.
    for f in ["text", "cbor", "tlv", "senml-json", "senml-cbor", "lwm2m-json"] {
        let hex = ok_text(lwm2m(
            &["codec", "encode", "-f", f, "-p", "/3/0/7/1"],
            br#"{"/3/0/7/1": 5000}"#,
        ));
        let back = ok_json(lwm2m(
            &["codec", "decode", "-f", f, "-p", "/3/0/7/1", "--hex", &hex],
            b"",
        ));
        assert_eq!(back, serde_json::json!({"/3/0/7/1": 5000}), "format {f}");
    }
    // Text: battery level 100 is the ASCII "100".
    assert_eq!(
        ok_text(lwm2m(
            &["codec", "encode", "-f", "text", "-p", "/3/0/9"],
            br#"{"/3/0/9": 100}"#
        )),
        "313030"
    );
    // Opaque: raw bytes from stdin.
    let json = ok_json(lwm2m(
        &["codec", "decode", "-f", "opaque", "-p", "/5/0/0"],
        &[1, 2, 3, 4, 5],
    ));
    assert_eq!(json, serde_json::json!({"/5/0/0": {"base64": "AQIDBAU="}}));
    // Objlnk as "O:I" in SenML (vlo).
    let hex = ok_text(lwm2m(
        &["codec", "encode", "-f", "senml-json", "-p", "/2/0/0"],
        br#"{"/2/0/0": 3}"#,
    ));
    assert!(!hex.is_empty());
}

#[test]
fn composite_senml_at_root_and_timestamps() {
    let pack = br#"[{"bn":"/3303/0/5700","bt":1700000000,"v":21.5},{"t":60,"v":21.7}]"#;
    let out = ok_json(lwm2m(&["codec", "decode", "-f", "senml-json", "--records"], pack));
    assert_eq!(
        out,
        serde_json::json!([
            {"path": "/3303/0/5700", "value": 21.5, "time": 1700000000.0},
            {"path": "/3303/0/5700", "value": 21.7, "time": 1700000060.0}
        ])
    );
    // Without --records the duplicate path is refused with a hint.
    let out = lwm2m(&["codec", "decode", "-f", "senml-json"], pack);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--records"));
    // Composite content across objects at the root path.
    let input = serde_json::json!({"/1/0/1": 300, "/3/0/9": 87});
    let hex = ok_text(lwm2m(
        &["codec", "encode", "-f", "senml-cbor"],
        input.to_string().as_bytes(),
    ));
    let back = ok_json(lwm2m(&["codec", "decode", "-f", "senml-cbor", "--hex", &hex], b""));
    assert_eq!(back, input);
}

#[test]
fn link_format() {
    let reg = br#"</>;rt="oma.lwm2m";ct="110 112",</1/0>,</3/0>,</3303>;ver=1.1,</3303/0>"#;
    let json = ok_json(lwm2m(&["codec", "decode", "-f", "link"], reg));
    assert_eq!(json["/"]["rt"], "oma.lwm2m");
    assert_eq!(json["/3303"]["ver"], "1.1");
    let hex = ok_text(lwm2m(&["codec", "encode", "-f", "link"], json.to_string().as_bytes()));
    assert_eq!(hex::decode(hex).unwrap(), reg);
}

#[test]
fn bad_input_exits_non_zero_with_one_line() {
    let cases: &[(&[&str], &[u8])] = &[
        (
            &["codec", "decode", "-f", "tlv", "-p", "/3/0", "--hex", "C8 00 14 4F"],
            b"",
        ),
        (&["codec", "decode", "-f", "tlv", "-p", "/3/0", "--hex", "zz"], b""),
        (&["codec", "decode", "-f", "senml-json", "-p", "/3/0"], b"[{\"n\":"),
        (&["codec", "decode", "-f", "text", "-p", "/3/0/9"], b"abc"),
        (&["codec", "encode", "-f", "tlv", "-p", "/3/0"], b"not json"),
        (&["codec", "encode", "-f", "tlv", "-p", "/3/0"], br#"{"/4/0/1": 1}"#),
        (
            &["codec", "encode", "-f", "text", "-p", "/3/0/9"],
            br#"{"/3/0/9": "many"}"#,
        ),
        (&["codec", "decode", "-f", "bogus", "-p", "/3/0"], b""),
        (&["codec", "decode", "-f", "tlv", "-p", "/3/x"], b""),
    ];
    for (args, stdin) in cases {
        let out = lwm2m(args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{args:?} should say why");
        if !args.contains(&"bogus") && !args.contains(&"/3/x") {
            assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line, got {err}");
        }
    }
}

#[test]
fn extra_models_from_a_directory() {
    let dir = std::env::temp_dir().join(format!("lwm2m-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("40000.xml"),
        r#"<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Test</Name><Description1></Description1><ObjectID>40000</ObjectID>
<ObjectURN>urn:oma:lwm2m:x:40000</ObjectURN><LWM2MVersion>1.1</LWM2MVersion><ObjectVersion>1.0</ObjectVersion>
<MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources>
<Item ID="1"><Name>Level</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
<Mandatory>Mandatory</Mandatory><Type>Float</Type><RangeEnumeration></RangeEnumeration><Units></Units>
<Description></Description></Item></Resources><Description2></Description2></Object></LWM2M>"#,
    )
    .unwrap();
    // 4 bytes in TLV: without the model this is Opaque; with it, a binary32 float.
    let args = [
        "codec",
        "decode",
        "-f",
        "tlv",
        "-p",
        "/40000/0/1",
        "--hex",
        "C4 01 40 49 0F D0",
    ];
    let plain = ok_json(lwm2m(&args, b""));
    assert_eq!(plain["/40000/0/1"]["base64"], "QEkP0A==");
    let dir_s = dir.to_str().unwrap();
    let mut with = args.to_vec();
    with.extend(["--model-dir", dir_s]);
    let typed = ok_json(lwm2m(&with, b""));
    let expected = f64::from(f32::from_be_bytes([0x40, 0x49, 0x0F, 0xD0]));
    assert_eq!(typed["/40000/0/1"].as_f64().unwrap(), expected);
    std::fs::remove_dir_all(&dir).ok();
}
