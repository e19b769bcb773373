// The TypeScript SDK's client driving the warded gateway over stdio.
// Usage: node ts-client.mjs COMMAND [ARGS...] -- CALLS_JSON
// CALLS_JSON is a list of [tool, arguments] or [tool, arguments, _meta]; prints one JSON object:
// { tools: [names], results: [CallToolResult...] }
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const [command, ...args] = argv.slice(0, split);
const calls = JSON.parse(argv[split + 1]);

const client = new Client({ name: "warded-ts-test", version: "1.0.0" });
await client.connect(new StdioClientTransport({ command, args, stderr: "inherit" }));
const { tools } = await client.listTools();
const results = [];
for (const [name, toolArgs, meta] of calls) {
  const params = meta === undefined ? { name, arguments: toolArgs } : { name, arguments: toolArgs, _meta: meta };
  results.push(await client.callTool(params));
}
console.log(JSON.stringify({ tools: tools.map((t) => t.name), results }));
await client.close();
