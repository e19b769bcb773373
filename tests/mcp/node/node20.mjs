// Lets @modelcontextprotocol/conformance run on Node 20: it imports
// `globSync` from "fs", which Node added in 22. Imports of "fs" from that
// package resolve to a module that re-exports Node's fs plus a globSync
// built on the `glob` package. Used as `node --import ./node20.mjs ...`.
import { register } from "node:module";

register("./node20-hooks.mjs", import.meta.url);
