//! A benign detector that does a fixed amount of work (config `{"rounds": N}`, N million
//! rounds of arithmetic) and finds nothing: the host's tests use it for calls that need a
//! known, bounded amount of CPU time.

wit_bindgen::generate!({ path: "../../../wit", world: "detector" });

struct Work;

impl Guest for Work {
    fn detect(_cx: Context, input: Payload, config: String) -> Result<Vec<Finding>, String> {
        let digits: String = config.chars().filter(char::is_ascii_digit).collect();
        let rounds: u64 = digits.parse().map_err(|_| format!("config {config} names no rounds"))?;
        let mut n = input.json.len() as u64;
        for _ in 0..rounds * 1_000_000 {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        std::hint::black_box(n);
        Ok(Vec::new())
    }
}

export!(Work);
