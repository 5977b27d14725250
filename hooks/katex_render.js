// Render TeX with the site's own KaTeX at build time (called by hooks/katex.py).
// stdin: JSON [[tex, displayMode], ...]; stdout: JSON [html, ...]. A TeX error exits non-zero.
const katex = require(process.argv[2]);
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = [];
  for (const [tex, displayMode] of JSON.parse(input)) {
    try {
      out.push(katex.renderToString(tex, { displayMode, throwOnError: true }));
    } catch (e) {
      process.stderr.write(`${e.message}\n  in: ${tex}\n`);
      process.exit(1);
    }
  }
  process.stdout.write(JSON.stringify(out));
});
