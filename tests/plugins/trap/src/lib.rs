//! Panics, which a component reports as a trap.

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

struct Trap;

impl Guest for Trap {
    fn detect(_cx: Context, input: Payload, _config: String) -> Result<Vec<Finding>, String> {
        panic!("this detector always fails ({} scalars)", input.scalars.len())
    }
}

export!(Trap);
