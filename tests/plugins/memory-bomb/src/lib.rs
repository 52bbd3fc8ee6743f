//! Allocates until something stops it: the host's memory cap must.

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn detect(_cx: Context, _input: Payload, _config: String) -> Result<Vec<Finding>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export!(MemoryBomb);
