//! Its `prepare` never returns: loading it must fail within the prepare budget.

wit_bindgen::generate!({ path: "../../../wit", world: "prepared-detector" });

struct PrepareSpin;

impl Guest for PrepareSpin {
    fn prepare() {
        let mut n = 1u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    fn detect(_cx: Context, _input: Payload, _config: String) -> Result<Vec<Finding>, String> {
        Ok(Vec::new())
    }
}

export!(PrepareSpin);
