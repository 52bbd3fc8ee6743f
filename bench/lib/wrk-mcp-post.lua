-- wrk script for the Forge bench: POST an MCP tools/call to the URL's path
-- and write a JSON summary to $WRK_JSON_OUT when the run ends.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"

local function num(x)
  return string.format("%.6f", x)
end

function done(summary, latency, requests)
  local path = os.getenv("WRK_JSON_OUT")
  if path == nil or path == "" then
    return
  end
  local e = summary.errors
  local f = assert(io.open(path, "w"))
  f:write("{")
  f:write('"requests":', summary.requests, ",")
  f:write('"duration_us":', summary.duration, ",")
  f:write('"bytes":', summary.bytes, ",")
  f:write('"errors":{"connect":', e.connect, ',"read":', e.read, ',"write":', e.write,
          ',"status":', e.status, ',"timeout":', e.timeout, "},")
  f:write('"latency_us":{"min":', num(latency.min), ',"mean":', num(latency.mean),
          ',"stdev":', num(latency.stdev), ',"max":', num(latency.max),
          ',"p50":', num(latency:percentile(50)), ',"p90":', num(latency:percentile(90)),
          ',"p99":', num(latency:percentile(99)), ',"p99.9":', num(latency:percentile(99.9)), "}")
  f:write("}\n")
  f:close()
end
