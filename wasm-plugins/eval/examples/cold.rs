use detector_eval::payloads::{request, tool_list};
use forge_plugin_sdk::{Config, Context, Hook, Payload};
fn main() {
    let which = std::env::args().nth(1).unwrap();
    let size: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let config = Config::default();
    let call = Context::new(Hook::Request, "tools/call").with_tool("run_command", None);
    let result = Context::new(Hook::Response, "tools/call").with_tool("run_command", None);
    let list = Context::new(Hook::ToolList, "tools/list");
    let args = Payload::from_value(&request(size));
    let tools = Payload::from_value(&tool_list(size));
    for round in ["cold", "warm"] {
        let t = std::time::Instant::now();
        match which.as_str() {
            "pii" => { pii::detect(&result, &args, &config).unwrap(); }
            "secrets" => { secrets::detect(&call, &args, &config).unwrap(); }
            "code-exec" => { code_exec::detect(&call, &args, &config).unwrap(); }
            "tool-poisoning" => { tool_poisoning::detect(&list, &tools, &config).unwrap(); }
            _ => {
                pii::detect(&result, &args, &config).unwrap();
                secrets::detect(&call, &args, &config).unwrap();
                code_exec::detect(&call, &args, &config).unwrap();
                tool_poisoning::detect(&list, &tools, &config).unwrap();
            }
        }
        println!("{which} {size} {round} {:?}", t.elapsed());
    }
}
