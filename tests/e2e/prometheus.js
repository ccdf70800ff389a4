// sys/metrics?format=prometheus read with a real Prometheus parser: prometheus_client's
// text_string_to_metric_families (Debian's python3-prometheus-client, packaging/install-deps.sh),
// run in a Python child process.
'use strict';

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');

// Debian's python3 (the package installs prometheus_client for it), unless PYTHON says otherwise.
const PYTHON = process.env.PYTHON || (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

// Reads the exposition on stdin with prometheus_client's parser and prints every family as JSON.
// The parser is lax (a sample it cannot place becomes an "untyped" family of its own), so the
// tests also check that every family has the type it declared.
const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    samples = []
    for s in f.samples:
        v = s.value
        samples.append({"name": s.name, "labels": s.labels,
                        "value": v if math.isfinite(v) else str(v)})
    out.append({"name": f.name, "type": f.type, "documentation": f.documentation,
                "samples": samples})
print(json.dumps(out))
`;

function parsePrometheus(text) {
  const r = spawnSync(PYTHON, ['-c', PARSE], { input: text, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `the Prometheus parser failed: ${r.stderr}`);
  const families = JSON.parse(r.stdout);
  const byName = new Map();
  for (const f of families) {
    assert.ok(!byName.has(f.name), `family ${f.name} appears once`);
    byName.set(f.name, f);
  }
  return byName;
}

async function scrape(d, token, { query = '?format=prometheus', headers = {} } = {}) {
  const h = { ...headers };
  if (token) h['X-Vault-Token'] = token;
  const res = await fetch(`${d.addr}/v1/sys/metrics${query}`, { headers: h });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function families(d, token, options) {
  const r = await scrape(d, token, options);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  const parsed = parsePrometheus(r.text);
  for (const f of parsed.values()) {
    assert.notEqual(f.type, 'untyped', `${f.name} was not parsed as the family it declared`);
  }
  return parsed;
}

const sameLabels = (a, want) => Object.keys(want).every((k) => a[k] === want[k]);

// The value of sample `sample` of family `family` whose labels include `labels`; 0 when absent
// (a labelled series appears with its first update).
function value(fams, family, sample, labels = {}) {
  const f = fams.get(family);
  if (!f) return 0;
  const s = f.samples.find((x) => x.name === sample && sameLabels(x.labels, labels));
  return s ? s.value : 0;
}

module.exports = { parsePrometheus, scrape, families, value };
