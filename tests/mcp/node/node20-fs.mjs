import fs from "node:fs";
import { globSync as glob } from "glob";

export * from "node:fs";
export default fs;
export const globSync = fs.globSync ?? ((pattern, options) => glob(pattern, options ?? {}));
