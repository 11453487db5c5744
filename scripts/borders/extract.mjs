// Extract ASEAN country polygons and shared land-boundary meshes from Natural Earth 1:10m
// (the world-atlas 2.x TopoJSON) as plain GeoJSON, for scripts/build_borders.py.
//
// Usage: node extract.mjs OUTPUT_DIR
//
// Writes into OUTPUT_DIR:
//   countries.geojson     the 11 ASEAN member states (properties: state, name, iso_n3)
//   neighbours.geojson    every other country whose bbox touches Southeast Asia (for "all land")
//   land_meshes.geojson   one MultiLineString per ASEAN pair sharing a land boundary
//                         (topojson mesh with filter (a, b) => a !== b && pair test)
//   meta.json             versions and the topology transform (quantisation grid)
//
// The output is deterministic: features in a fixed order, no timestamps.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { feature, mesh } from "topojson-client";

const require = createRequire(import.meta.url);

const outDir = process.argv[2];
if (!outDir || outDir === "-h" || outDir === "--help") {
  console.error("usage: node extract.mjs OUTPUT_DIR");
  process.exit(outDir ? 0 : 2);
}
mkdirSync(outDir, { recursive: true });

const atlasPath = require.resolve("world-atlas/countries-10m.json");
const topology = JSON.parse(readFileSync(atlasPath, "utf8"));
const atlasVersion = require("world-atlas/package.json").version;
const clientVersion = require("topojson-client/package.json").version;

// ISO 3166-1 alpha-2 -> [numeric id in world-atlas, Natural Earth NAME, display name]
const ASEAN = [
  ["TH", "764", "Thailand", "Thailand"],
  ["MY", "458", "Malaysia", "Malaysia"],
  ["MM", "104", "Myanmar", "Myanmar"],
  ["LA", "418", "Laos", "Laos"],
  ["KH", "116", "Cambodia", "Cambodia"],
  ["ID", "360", "Indonesia", "Indonesia"],
  ["SG", "702", "Singapore", "Singapore"],
  ["PH", "608", "Philippines", "Philippines"],
  ["BN", "096", "Brunei", "Brunei"],
  ["VN", "704", "Vietnam", "Vietnam"],
  ["TL", "626", "Timor-Leste", "Timor-Leste"],
];

const geometries = topology.objects.countries.geometries;

// Find each state's geometry: by numeric id, falling back to the name (ids can be missing/-99).
const stateOf = new Map(); // geometry object -> alpha-2
for (const [alpha2, numeric, neName] of ASEAN) {
  let matches = geometries.filter((g) => g.id === numeric);
  if (matches.length === 0) matches = geometries.filter((g) => g.properties && g.properties.name === neName);
  if (matches.length !== 1) {
    console.error(`expected exactly one geometry for ${alpha2} (${numeric}/${neName}), found ${matches.length}`);
    process.exit(1);
  }
  stateOf.set(matches[0], alpha2);
}

const collection = (features) => ({ type: "FeatureCollection", features });

// 1. ASEAN country polygons.
const countries = [];
for (const [alpha2, numeric, , display] of ASEAN) {
  const g = [...stateOf].find(([, a]) => a === alpha2)[0];
  const f = feature(topology, g);
  countries.push({
    type: "Feature",
    properties: { state: alpha2, name: display, iso_n3: g.id ?? numeric, ne_name: g.properties.name },
    geometry: f.geometry,
  });
}

// 2. Other countries near Southeast Asia (only to know where land is).
const REGION = [85, -15, 150, 30]; // lon/lat bbox
const neighbours = [];
for (const g of geometries) {
  if (stateOf.has(g)) continue;
  const f = feature(topology, g);
  if (!f.geometry) continue;
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      x0 = Math.min(x0, c[0]); y0 = Math.min(y0, c[1]); x1 = Math.max(x1, c[0]); y1 = Math.max(y1, c[1]);
    } else c.forEach(walk);
  };
  walk(f.geometry.coordinates);
  if (x1 < REGION[0] || x0 > REGION[2] || y1 < REGION[1] || y0 > REGION[3]) continue;
  neighbours.push({
    type: "Feature",
    properties: { iso_n3: g.id ?? null, name: g.properties.name },
    geometry: f.geometry,
  });
}

// 3. Shared land boundaries, one mesh per ASEAN pair.
const meshes = [];
for (let i = 0; i < ASEAN.length; i++) {
  for (let j = i + 1; j < ASEAN.length; j++) {
    const [a2, b2] = [ASEAN[i][0], ASEAN[j][0]];
    const m = mesh(topology, topology.objects.countries, (a, b) => {
      if (a === b) return false;
      const sa = stateOf.get(a);
      const sb = stateOf.get(b);
      return (sa === a2 && sb === b2) || (sa === b2 && sb === a2);
    });
    if (!m.coordinates.length) continue;
    meshes.push({ type: "Feature", properties: { a: a2, b: b2 }, geometry: m });
  }
}

writeFileSync(join(outDir, "countries.geojson"), JSON.stringify(collection(countries)));
writeFileSync(join(outDir, "neighbours.geojson"), JSON.stringify(collection(neighbours)));
writeFileSync(join(outDir, "land_meshes.geojson"), JSON.stringify(collection(meshes)));
writeFileSync(
  join(outDir, "meta.json"),
  JSON.stringify(
    {
      "world-atlas": atlasVersion,
      "topojson-client": clientVersion,
      file: "countries-10m.json",
      transform: topology.transform ?? null,
      countries: countries.length,
      neighbours: neighbours.length,
      pairs: meshes.map((m) => `${m.properties.a}-${m.properties.b}`),
    },
    null,
    2,
  ),
);
console.log(
  `extracted ${countries.length} ASEAN states, ${neighbours.length} neighbouring countries, ` +
    `${meshes.length} land-boundary pairs: ${meshes.map((m) => `${m.properties.a}-${m.properties.b}`).join(" ")}`,
);
