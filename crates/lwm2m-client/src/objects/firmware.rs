//! Firmware Update (Object 5, v1.0) and its state machine (digest §9.1).
//!
//! ```text
//!   IDLE(0) --write Package (push) / write Package URI (pull), Result := 0--> DOWNLOADING(1)
//!   DOWNLOADING --download_finished(Ok)--> DOWNLOADED(2)
//!   DOWNLOADING --download_finished(Err(r)), Result := r (2..7, 9)--> IDLE
//!   DOWNLOADED --Execute /5/0/2 Update, Result := 0--> UPDATING(3)
//!   UPDATING --update_finished(Ok), Result := 1--> IDLE
//!   UPDATING --update_finished(Err(UpdateFailed)), Result := 8--> DOWNLOADED
//!   UPDATING --update_finished(Err(r)) (e.g. integrity failure)--> IDLE, Result := r
//!   any --write "" to Package URI, or an empty / single-NUL Package--> IDLE, Result := 0
//! ```
//!
//! * **Push**: the whole image arrives in one Write of `/5/0/0` (block-wise reassembly happens below the data
//!   model). With automatic verification (the default) it goes straight on to Downloaded; without, it stays in
//!   Downloading and a [`ClientAction::FirmwareVerify`] asks the application to check it and report with
//!   [`FirmwareUpdate::download_finished`].
//! * **Pull**: a Write of `/5/0/1` records the URI and produces [`ClientAction::FirmwareDownload`]; the driver
//!   downloads and reports with [`FirmwareUpdate::download_finished`]. A URI that does not parse sets Result 7
//!   (invalid URI), a scheme not listed in `/5/0/8` sets Result 9 (unsupported protocol); the state stays Idle
//!   and the Write itself succeeds (the outcome is reported through the Result resource).
//! * A new Package or Package URI is accepted only in Idle (4.05 otherwise); the Update execute only in
//!   Downloaded (4.05 otherwise). Delivery Method `/5/0/9` gates push (1 or 2) and pull (0 or 2) writes (4.05).

use lwm2m_core::{InstanceNode, ResourceNode, ResourceValue, Value};

use super::{builtin_model, FIRMWARE_UPDATE};
use crate::object::{Behavior, ClientAction, DmError, Effects, ExecArg, InstanceStore, SimpleObject};

/// `/5/0/3` State.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirmwareState {
    /// 0
    Idle,
    /// 1
    Downloading,
    /// 2
    Downloaded,
    /// 3
    Updating,
}

impl FirmwareState {
    /// The resource value.
    pub fn code(self) -> i64 {
        match self {
            FirmwareState::Idle => 0,
            FirmwareState::Downloading => 1,
            FirmwareState::Downloaded => 2,
            FirmwareState::Updating => 3,
        }
    }

    /// From the resource value (unknown values read as Idle).
    pub fn from_code(v: i64) -> FirmwareState {
        match v {
            1 => FirmwareState::Downloading,
            2 => FirmwareState::Downloaded,
            3 => FirmwareState::Updating,
            _ => FirmwareState::Idle,
        }
    }
}

/// `/5/0/5` Update Result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateResult {
    /// 0: initial value.
    Initial,
    /// 1: firmware updated successfully.
    Success,
    /// 2: not enough flash memory for the package.
    NotEnoughFlash,
    /// 3: out of RAM during download.
    OutOfRam,
    /// 4: connection lost during download.
    ConnectionLost,
    /// 5: integrity check failure.
    IntegrityCheckFailure,
    /// 6: unsupported package type.
    UnsupportedPackageType,
    /// 7: invalid URI.
    InvalidUri,
    /// 8: firmware update failed.
    UpdateFailed,
    /// 9: unsupported protocol.
    UnsupportedProtocol,
}

impl UpdateResult {
    /// The resource value.
    pub fn code(self) -> i64 {
        match self {
            UpdateResult::Initial => 0,
            UpdateResult::Success => 1,
            UpdateResult::NotEnoughFlash => 2,
            UpdateResult::OutOfRam => 3,
            UpdateResult::ConnectionLost => 4,
            UpdateResult::IntegrityCheckFailure => 5,
            UpdateResult::UnsupportedPackageType => 6,
            UpdateResult::InvalidUri => 7,
            UpdateResult::UpdateFailed => 8,
            UpdateResult::UnsupportedProtocol => 9,
        }
    }

    /// From the resource value.
    pub fn from_code(v: i64) -> Option<UpdateResult> {
        Some(match v {
            0 => UpdateResult::Initial,
            1 => UpdateResult::Success,
            2 => UpdateResult::NotEnoughFlash,
            3 => UpdateResult::OutOfRam,
            4 => UpdateResult::ConnectionLost,
            5 => UpdateResult::IntegrityCheckFailure,
            6 => UpdateResult::UnsupportedPackageType,
            7 => UpdateResult::InvalidUri,
            8 => UpdateResult::UpdateFailed,
            9 => UpdateResult::UnsupportedProtocol,
            _ => return None,
        })
    }

    /// Whether this result may end a download (2..=7 and 9).
    pub fn is_download_error(self) -> bool {
        matches!(self.code(), 2..=7 | 9)
    }
}

/// `/5/0/8` protocol codes.
pub mod protocol {
    /// CoAP (RFC 7252) with block-wise transfer.
    pub const COAP: i64 = 0;
    /// CoAPS.
    pub const COAPS: i64 = 1;
    /// HTTP 1.1.
    pub const HTTP: i64 = 2;
    /// HTTPS 1.1.
    pub const HTTPS: i64 = 3;
    /// CoAP over TCP.
    pub const COAP_TCP: i64 = 4;
    /// CoAP over TLS.
    pub const COAP_TLS: i64 = 5;
}

/// The protocol code of a Package URI's scheme: `Err(InvalidUri)` when it does not parse,
/// `Err(UnsupportedProtocol)` for a scheme without a code.
pub fn uri_protocol(uri: &str) -> Result<i64, UpdateResult> {
    let (scheme, rest) = uri.split_once("://").ok_or(UpdateResult::InvalidUri)?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !scheme_ok || authority.is_empty() || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UpdateResult::InvalidUri);
    }
    match scheme.to_ascii_lowercase().as_str() {
        "coap" => Ok(protocol::COAP),
        "coaps" => Ok(protocol::COAPS),
        "http" => Ok(protocol::HTTP),
        "https" => Ok(protocol::HTTPS),
        "coap+tcp" => Ok(protocol::COAP_TCP),
        "coaps+tcp" => Ok(protocol::COAP_TLS),
        _ => Err(UpdateResult::UnsupportedProtocol),
    }
}

/// How the Firmware Update object is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareConfig {
    /// `/5/0/8` pull protocols supported (default CoAP and CoAPS).
    pub protocols: Vec<i64>,
    /// `/5/0/9` 0 pull only, 1 push only, 2 both (default).
    pub delivery_method: i64,
    /// Whether a pushed package counts as verified at once (default true).
    pub auto_verify: bool,
    /// `/5/0/6` PkgName.
    pub package_name: Option<String>,
    /// `/5/0/7` PkgVersion.
    pub package_version: Option<String>,
}

impl Default for FirmwareConfig {
    fn default() -> FirmwareConfig {
        FirmwareConfig {
            protocols: vec![protocol::COAP, protocol::COAPS],
            delivery_method: 2,
            auto_verify: true,
            package_name: None,
            package_version: None,
        }
    }
}

const PACKAGE: u16 = 0;
const PACKAGE_URI: u16 = 1;
const UPDATE: u16 = 2;
const STATE: u16 = 3;
const RESULT: u16 = 5;

/// The state machine behind `/5/0`; State and Update Result live in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareBehavior {
    auto_verify: bool,
    package: Vec<u8>,
}

fn state_of(store: &InstanceStore) -> FirmwareState {
    FirmwareState::from_code(store.int(0, STATE).unwrap_or(0))
}

fn is_reset_package(b: &[u8]) -> bool {
    b.is_empty() || b == [0]
}

fn set_state(store: &mut InstanceStore, s: FirmwareState, r: UpdateResult, fx: &mut Effects) -> Result<(), DmError> {
    store.set(0, STATE, Value::Integer(s.code()), fx)?;
    store.set(0, RESULT, Value::Integer(r.code()), fx)
}

fn delivery(store: &InstanceStore) -> i64 {
    store.int(0, 9).unwrap_or(2)
}

impl FirmwareBehavior {
    fn reset(&mut self, store: &mut InstanceStore, fx: &mut Effects) -> Result<(), DmError> {
        self.package.clear();
        set_state(store, FirmwareState::Idle, UpdateResult::Initial, fx)
    }
}

impl Behavior for FirmwareBehavior {
    fn check_write(&self, store: &InstanceStore, iid: u16, rid: u16, value: &ResourceValue) -> Result<(), DmError> {
        let state = state_of(store);
        let not_idle = || {
            Err(DmError::method_not_allowed(format!(
                "/5/{iid}/{rid}: a new package is accepted only in state Idle (state is {state:?})"
            )))
        };
        match (rid, value) {
            (PACKAGE, ResourceValue::Single(Value::Opaque(b))) if !is_reset_package(b) => {
                if !matches!(delivery(store), 1 | 2) {
                    return Err(DmError::method_not_allowed("/5/0/0: push delivery is not supported"));
                }
                if state != FirmwareState::Idle {
                    return not_idle();
                }
                Ok(())
            }
            (PACKAGE_URI, ResourceValue::Single(Value::String(u))) if !u.is_empty() => {
                if !matches!(delivery(store), 0 | 2) {
                    return Err(DmError::method_not_allowed("/5/0/1: pull delivery is not supported"));
                }
                if u.len() > 255 {
                    return Err(DmError::bad_request(format!(
                        "/5/0/1: URI of {} bytes (max 255)",
                        u.len()
                    )));
                }
                if state != FirmwareState::Idle {
                    return not_idle();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn write(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        value: ResourceValue,
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        match (rid, value) {
            (PACKAGE, ResourceValue::Single(Value::Opaque(b))) => {
                if is_reset_package(&b) {
                    store.set(0, PACKAGE_URI, Value::String(String::new()), fx)?;
                    return self.reset(store, fx);
                }
                let size = b.len();
                self.package = b;
                set_state(store, FirmwareState::Downloading, UpdateResult::Initial, fx)?;
                if self.auto_verify {
                    set_state(store, FirmwareState::Downloaded, UpdateResult::Initial, fx)
                } else {
                    fx.action(ClientAction::FirmwareVerify { size });
                    Ok(())
                }
            }
            (PACKAGE_URI, ResourceValue::Single(Value::String(uri))) => {
                store.put(iid, PACKAGE_URI, ResourceValue::Single(Value::String(uri.clone())))?;
                if uri.is_empty() {
                    return self.reset(store, fx);
                }
                let supported = match store.get(0, 8) {
                    Some(ResourceValue::Multiple(m)) => {
                        m.values().filter_map(|v| v.as_f64()).map(|f| f as i64).collect()
                    }
                    _ => vec![protocol::COAP],
                };
                match uri_protocol(&uri) {
                    Ok(p) if supported.contains(&p) => {
                        set_state(store, FirmwareState::Downloading, UpdateResult::Initial, fx)?;
                        fx.action(ClientAction::FirmwareDownload { uri });
                        Ok(())
                    }
                    Ok(_) => set_state(store, FirmwareState::Idle, UpdateResult::UnsupportedProtocol, fx),
                    Err(r) => set_state(store, FirmwareState::Idle, r, fx),
                }
            }
            (rid, value) => store.put(iid, rid, value),
        }
    }

    fn execute(
        &mut self,
        store: &mut InstanceStore,
        iid: u16,
        rid: u16,
        _args: &[ExecArg],
        fx: &mut Effects,
    ) -> Result<(), DmError> {
        if rid != UPDATE {
            return Err(DmError::method_not_allowed(format!("/5/{iid}/{rid} is not executable")));
        }
        let state = state_of(store);
        if state != FirmwareState::Downloaded {
            return Err(DmError::method_not_allowed(format!(
                "/5/{iid}/2 Update is allowed only in state Downloaded (state is {state:?})"
            )));
        }
        set_state(store, FirmwareState::Updating, UpdateResult::Initial, fx)?;
        fx.action(ClientAction::FirmwareUpdate);
        Ok(())
    }
}

/// The Firmware Update object type.
pub type FirmwareUpdate = SimpleObject<FirmwareBehavior>;

/// The Firmware Update object with its single instance in state Idle.
pub fn firmware_object(config: &FirmwareConfig) -> FirmwareUpdate {
    let mut r = vec![
        ResourceNode::single(PACKAGE, Value::Opaque(Vec::new())),
        ResourceNode::single(PACKAGE_URI, Value::String(String::new())),
        ResourceNode::single(STATE, Value::Integer(0)),
        ResourceNode::single(RESULT, Value::Integer(0)),
        ResourceNode::single(9, Value::Integer(config.delivery_method)),
    ];
    if !config.protocols.is_empty() {
        r.push(ResourceNode::multiple(
            8,
            (0u16..).zip(config.protocols.iter().map(|p| Value::Integer(*p))),
        ));
    }
    if let Some(n) = &config.package_name {
        r.push(ResourceNode::single(6, Value::String(n.clone())));
    }
    if let Some(v) = &config.package_version {
        r.push(ResourceNode::single(7, Value::String(v.clone())));
    }
    let store = InstanceStore::new(builtin_model(FIRMWARE_UPDATE, None))
        .with_instance(InstanceNode::new(0, r))
        .with_fixed_instances();
    SimpleObject::with_behavior(
        store,
        FirmwareBehavior {
            auto_verify: config.auto_verify,
            package: Vec::new(),
        },
    )
}

impl FirmwareUpdate {
    /// The current state.
    pub fn state(&self) -> FirmwareState {
        state_of(self.store())
    }

    /// The current Update Result (`None` if the stored value is not a known code).
    pub fn result(&self) -> Option<UpdateResult> {
        UpdateResult::from_code(self.store().int(0, RESULT).unwrap_or(0))
    }

    /// The package written by push (empty for pull or after a reset).
    pub fn package(&self) -> &[u8] {
        &self.behavior().package
    }

    /// The Package URI last written.
    pub fn package_uri(&self) -> &str {
        self.store().string(0, PACKAGE_URI).unwrap_or("")
    }

    /// The driver reports the end of a download (pull) or of the verification of a pushed package:
    /// `Ok` → Downloaded; `Err(r)` with a download error (2..=7, 9) → Idle with Result `r`.
    /// Only in state Downloading (else 4.05); another result code is 4.00.
    pub fn download_finished(&mut self, outcome: Result<(), UpdateResult>, fx: &mut Effects) -> Result<(), DmError> {
        let state = self.state();
        if state != FirmwareState::Downloading {
            return Err(DmError::method_not_allowed(format!(
                "no download in progress (state is {state:?})"
            )));
        }
        let (store, b) = self.parts_mut();
        match outcome {
            Ok(()) => set_state(store, FirmwareState::Downloaded, UpdateResult::Initial, fx),
            Err(r) if r.is_download_error() => {
                b.package.clear();
                set_state(store, FirmwareState::Idle, r, fx)
            }
            Err(r) => Err(DmError::bad_request(format!("{r:?} is not a download failure"))),
        }
    }

    /// The driver reports the end of an update: `Ok` → Idle with Result 1; `Err(UpdateFailed)` → back to
    /// Downloaded with Result 8; any other failure (e.g. integrity check) → Idle with that Result.
    /// Only in state Updating (else 4.05).
    pub fn update_finished(&mut self, outcome: Result<(), UpdateResult>, fx: &mut Effects) -> Result<(), DmError> {
        let state = self.state();
        if state != FirmwareState::Updating {
            return Err(DmError::method_not_allowed(format!(
                "no update in progress (state is {state:?})"
            )));
        }
        let (store, b) = self.parts_mut();
        match outcome {
            Ok(()) => {
                b.package.clear();
                set_state(store, FirmwareState::Idle, UpdateResult::Success, fx)
            }
            Err(UpdateResult::UpdateFailed) => {
                set_state(store, FirmwareState::Downloaded, UpdateResult::UpdateFailed, fx)
            }
            Err(r) if matches!(r, UpdateResult::Initial | UpdateResult::Success) => {
                Err(DmError::bad_request(format!("{r:?} is not a failure")))
            }
            Err(r) => {
                b.package.clear();
                set_state(store, FirmwareState::Idle, r, fx)
            }
        }
    }

    /// Sets PkgName and PkgVersion (`/5/0/6`, `/5/0/7`).
    pub fn set_package_info(&mut self, name: &str, version: &str, fx: &mut Effects) -> Result<(), DmError> {
        self.store_mut().set(0, 6, Value::String(name.into()), fx)?;
        self.store_mut().set(0, 7, Value::String(version.into()), fx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectHandler;
    use crate::objects::test_util::assert_node_matches_model;
    use lwm2m_core::Path;

    fn opaque(b: &[u8]) -> ResourceValue {
        ResourceValue::Single(Value::Opaque(b.to_vec()))
    }
    fn text(s: &str) -> ResourceValue {
        ResourceValue::Single(Value::String(s.into()))
    }

    /// check_write then write, as the dispatcher does.
    fn write(fw: &mut FirmwareUpdate, rid: u16, v: ResourceValue, fx: &mut Effects) -> Result<(), DmError> {
        fw.check_write(0, rid, &v)?;
        fw.write(0, rid, v, fx)
    }

    #[test]
    fn push_update_success() {
        let mut fw = firmware_object(&FirmwareConfig::default());
        assert_node_matches_model(fw.model(), fw.store().instance(0).unwrap());
        let mut fx = Effects::new();
        assert_eq!(
            fw.execute(0, 2, &[], &mut fx).unwrap_err().code(),
            (4, 5),
            "Update in Idle"
        );
        write(&mut fw, 0, opaque(b"image"), &mut fx).unwrap();
        assert_eq!(fw.state(), FirmwareState::Downloaded);
        assert_eq!(fw.package(), b"image");
        assert!(fx.changes().iter().any(|c| c.path == Path::resource(5, 0, 3)));
        assert_eq!(write(&mut fw, 0, opaque(b"again"), &mut fx).unwrap_err().code(), (4, 5));
        fw.execute(0, 2, &[], &mut fx).unwrap();
        assert_eq!(fw.state(), FirmwareState::Updating);
        assert_eq!(fx.take_actions(), vec![ClientAction::FirmwareUpdate]);
        assert_eq!(
            fw.execute(0, 2, &[], &mut fx).unwrap_err().code(),
            (4, 5),
            "Update while updating"
        );
        fw.update_finished(Ok(()), &mut fx).unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Idle, Some(UpdateResult::Success))
        );
        assert!(fw.package().is_empty());
        assert_eq!(fw.update_finished(Ok(()), &mut fx).unwrap_err().code(), (4, 5));
    }

    #[test]
    fn push_with_manual_verification_and_failures() {
        let mut fw = firmware_object(&FirmwareConfig {
            auto_verify: false,
            ..FirmwareConfig::default()
        });
        let mut fx = Effects::new();
        write(&mut fw, 0, opaque(b"img"), &mut fx).unwrap();
        assert_eq!(fw.state(), FirmwareState::Downloading);
        assert_eq!(fx.take_actions(), vec![ClientAction::FirmwareVerify { size: 3 }]);
        assert_eq!(
            fw.download_finished(Err(UpdateResult::Success), &mut fx)
                .unwrap_err()
                .code(),
            (4, 0)
        );
        fw.download_finished(Err(UpdateResult::IntegrityCheckFailure), &mut fx)
            .unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Idle, Some(UpdateResult::IntegrityCheckFailure))
        );
        // A new push resets the Result to 0.
        write(&mut fw, 0, opaque(b"img2"), &mut fx).unwrap();
        assert_eq!(fw.result(), Some(UpdateResult::Initial));
        fw.download_finished(Ok(()), &mut fx).unwrap();
        fw.execute(0, 2, &[], &mut fx).unwrap();
        fw.update_finished(Err(UpdateResult::UpdateFailed), &mut fx).unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Downloaded, Some(UpdateResult::UpdateFailed))
        );
        fw.execute(0, 2, &[], &mut fx).unwrap();
        fw.update_finished(Err(UpdateResult::IntegrityCheckFailure), &mut fx)
            .unwrap();
        assert_eq!(fw.state(), FirmwareState::Idle);
    }

    #[test]
    fn empty_package_resets_from_any_state() {
        for empty in [&b""[..], &[0u8][..]] {
            let mut fw = firmware_object(&FirmwareConfig::default());
            let mut fx = Effects::new();
            write(&mut fw, 0, opaque(b"image"), &mut fx).unwrap();
            fw.execute(0, 2, &[], &mut fx).unwrap();
            write(&mut fw, 0, opaque(empty), &mut fx).unwrap();
            assert_eq!(
                (fw.state(), fw.result()),
                (FirmwareState::Idle, Some(UpdateResult::Initial))
            );
            assert!(fw.package().is_empty());
        }
    }

    #[test]
    fn pull_download() {
        let mut fw = firmware_object(&FirmwareConfig::default());
        let mut fx = Effects::new();
        write(&mut fw, 1, text("coaps://fw.example.com/image.bin"), &mut fx).unwrap();
        assert_eq!(fw.state(), FirmwareState::Downloading);
        assert_eq!(fw.package_uri(), "coaps://fw.example.com/image.bin");
        assert_eq!(
            fx.take_actions(),
            vec![ClientAction::FirmwareDownload {
                uri: "coaps://fw.example.com/image.bin".into()
            }]
        );
        assert_eq!(
            write(&mut fw, 1, text("coap://other/x"), &mut fx).unwrap_err().code(),
            (4, 5)
        );
        fw.download_finished(Err(UpdateResult::ConnectionLost), &mut fx)
            .unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Idle, Some(UpdateResult::ConnectionLost))
        );
        write(&mut fw, 1, text("coap://fw/x"), &mut fx).unwrap();
        fw.download_finished(Ok(()), &mut fx).unwrap();
        assert_eq!(fw.state(), FirmwareState::Downloaded);
        // "" resets.
        write(&mut fw, 1, text(""), &mut fx).unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Idle, Some(UpdateResult::Initial))
        );
        assert_eq!(fw.download_finished(Ok(()), &mut fx).unwrap_err().code(), (4, 5));
    }

    #[test]
    fn bad_uris_set_result_codes() {
        let mut fw = firmware_object(&FirmwareConfig::default());
        let mut fx = Effects::new();
        write(&mut fw, 1, text("not a uri"), &mut fx).unwrap();
        assert_eq!(
            (fw.state(), fw.result()),
            (FirmwareState::Idle, Some(UpdateResult::InvalidUri))
        );
        write(&mut fw, 1, text("https://fw.example.com/x"), &mut fx).unwrap();
        assert_eq!(
            fw.result(),
            Some(UpdateResult::UnsupportedProtocol),
            "https not in /5/0/8"
        );
        write(&mut fw, 1, text("ftp://fw.example.com/x"), &mut fx).unwrap();
        assert_eq!(fw.result(), Some(UpdateResult::UnsupportedProtocol));
        assert!(fx.take_actions().is_empty());
        let long = format!("coap://h/{}", "a".repeat(300));
        assert_eq!(write(&mut fw, 1, text(&long), &mut fx).unwrap_err().code(), (4, 0));
    }

    #[test]
    fn delivery_method_gates() {
        let mut push_only = firmware_object(&FirmwareConfig {
            delivery_method: 1,
            ..FirmwareConfig::default()
        });
        let mut fx = Effects::new();
        assert_eq!(
            write(&mut push_only, 1, text("coap://h/x"), &mut fx)
                .unwrap_err()
                .code(),
            (4, 5)
        );
        let mut pull_only = firmware_object(&FirmwareConfig {
            delivery_method: 0,
            ..FirmwareConfig::default()
        });
        assert_eq!(
            write(&mut pull_only, 0, opaque(b"x"), &mut fx).unwrap_err().code(),
            (4, 5)
        );
    }

    #[test]
    fn uri_parsing() {
        assert_eq!(uri_protocol("coap://h"), Ok(0));
        assert_eq!(uri_protocol("COAPS://h:5684/fw?x=1"), Ok(1));
        assert_eq!(uri_protocol("coaps+tcp://[::1]/a"), Ok(5));
        assert_eq!(uri_protocol("coap+tcp://h"), Ok(4));
        assert_eq!(uri_protocol("http://h"), Ok(2));
        assert_eq!(uri_protocol("https://h"), Ok(3));
        assert_eq!(uri_protocol("gopher://h"), Err(UpdateResult::UnsupportedProtocol));
        for bad in [
            "",
            "coap:/h",
            "://h",
            "coap://",
            "coap:///x",
            "1coap://h",
            "coap://h /x",
        ] {
            assert_eq!(uri_protocol(bad), Err(UpdateResult::InvalidUri), "{bad}");
        }
    }
}
