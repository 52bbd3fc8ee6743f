//! Never returns: the host's time budget must stop it.

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

struct Spin;

impl Guest for Spin {
    fn detect(_cx: Context, input: Payload, _config: String) -> Result<Vec<Finding>, String> {
        let mut n = input.json.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export!(Spin);
