//! The Toxiproxy API's toxic JSON (`POST /proxies/{name}/toxics` and the update `POST
//! .../toxics/{toxic}`): any body must be accepted or refused with an error, never a panic;
//! an accepted toxic validates and its update from a second body (after a 0xFF byte) too.
#![no_main]

use chaos_proxy::{Toxic, ToxicKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (create, update) = match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(t) = Toxic::from_json(create) {
        assert!(t.validate().is_ok(), "from_json accepted an invalid toxic: {t:?}");
        if let Ok(u) = t.updated_from_json(update) {
            assert!(u.validate().is_ok(), "an update produced an invalid toxic: {u:?}");
        }
    }
    if let Ok(text) = std::str::from_utf8(create) {
        if let Ok(mut kind) = ToxicKind::from_type(text) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(update) {
                let _ = kind.merge_attributes(&v);
                let _ = kind.validate();
            }
        }
    }
});
