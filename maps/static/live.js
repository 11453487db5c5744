/* Borderwatch live map layers.
 *
 * BW.live(map, [{def, group}], options) polls each visible layer's GeoJSON endpoint on this
 * server (bbox of the view, start of the time window, since the last poll for append-only
 * layers, simplification for the zoom) and keeps its Leaflet group current: new and changed
 * features are drawn, features the endpoint no longer returns are removed. Text from the data
 * only ever reaches the page through textContent, never as HTML.
 */
(function () {
  "use strict";

  var BW = (window.BW = window.BW || {});
  var OVERLAP_MS = 10000;      // re-ask for this much before the last poll: transactions still committing
  var FULL_EVERY = 12;         // every n-th poll of a since= layer re-reads the whole window
  var MOVE_DEBOUNCE_MS = 300;

  BW.layers = {};
  BW.clockOffsetMs = 0;        // server clock minus browser clock, from each response's timeStamp

  function serverNow() { return Date.now() + BW.clockOffsetMs; }

  function degreesPerPixel(zoom) { return 360 / (256 * Math.pow(2, zoom)); }

  function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

  function bboxOf(map) {
    var b = map.getBounds().pad(0.25);
    var w = clamp(b.getWest(), -180, 180), e = clamp(b.getEast(), -180, 180);
    var s = clamp(b.getSouth(), -90, 90), n = clamp(b.getNorth(), -90, 90);
    if (w >= e || s >= n) return null;
    return [w, s, e, n].map(function (v) { return v.toFixed(4); }).join(",");
  }

  function text(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function colourOf(style, props, nowMs) {
    if (style.age_of) {
      var t = props[style.age_of];
      if (!t) return style.default;
      var age = (nowMs - Date.parse(t)) / 1000;
      for (var i = 0; i < style.age_steps.length; i++) {
        if (age <= style.age_steps[i][0]) return style.age_steps[i][1];
      }
      return style.default;
    }
    if (style.by) {
      var v = props[style.by];
      if (v !== null && v !== undefined && Object.prototype.hasOwnProperty.call(style.colours, v)) {
        return style.colours[v];
      }
    }
    return style.default;
  }

  function popupContent(def, f) {
    var p = f.properties || {};
    var root = document.createElement("div");
    root.className = "bw-popup bw-popup-" + def.key;
    var h = document.createElement("strong");
    h.textContent = (def.title && text(p[def.title])) || def.name + " " + text(f.id);
    root.appendChild(h);
    var table = document.createElement("table");
    def.popup.forEach(function (row) {
      var v = p[row[1]];
      if (v === null || v === undefined || v === "") return;
      var tr = table.insertRow();
      var th = document.createElement("th");
      th.textContent = row[0];
      tr.appendChild(th);
      tr.insertCell().textContent = text(v);
    });
    root.appendChild(table);
    def.links.forEach(function (link) {
      var missing = false;
      var href = link.href.replace(/\{(\w+)\}/g, function (_, k) {
        var v = k === "id" ? f.id : p[k];
        if (v === null || v === undefined || v === "") missing = true;
        return encodeURIComponent(text(v));
      });
      if (missing) return;
      var a = document.createElement("a");
      a.href = href;
      a.className = "bw-link";
      a.textContent = link.label;
      root.appendChild(a);
    });
    return root;
  }

  function tag(layer, id) {
    layer.on("add", function () {
      var el = layer.getElement ? layer.getElement() : null;
      if (el) el.setAttribute("data-feature-id", id);
    });
  }

  function makeLayer(def, f, colour, pane) {
    var g = f.geometry;
    if (!g) return null;
    var s = def.style, cls = "bw-f bw-" + def.key, id = String(f.id), layer;
    if (def.geometry === "point" && g.type === "Point") {
      var ll = [g.coordinates[1], g.coordinates[0]];
      if (def.cluster) {
        var dot = document.createElement("span");
        dot.className = "bw-dot";
        dot.style.background = colour;
        dot.setAttribute("data-feature-id", id);
        layer = L.marker(ll, {
          icon: L.divIcon({className: cls + " bw-pin", html: dot, iconSize: [14, 14]}),
          keyboard: false, interactive: def.interactive,
        });
      } else if (Object.keys(s.icons || {}).length) {
        var badge = document.createElement("span");
        badge.className = "bw-badge";
        badge.style.background = colour;
        var glyph = document.createElement("i");
        var key = s.icon_by ? text((f.properties || {})[s.icon_by]) : "";
        glyph.className = s.icons[key] || s.icons["*"] || "fa-solid fa-circle";
        badge.appendChild(glyph);
        var opts = {
          icon: L.divIcon({className: cls + " bw-pin", html: badge, iconSize: [24, 24]}),
          keyboard: false, interactive: def.interactive, riseOnHover: true,
        };
        if (pane) opts.pane = pane;
        layer = L.marker(ll, opts);
        tag(layer, id);
      } else {
        layer = L.circleMarker(ll, {
          radius: s.radius, color: colour, weight: s.weight, opacity: s.opacity, fillColor: s.fill || colour,
          fillOpacity: s.fill_opacity, className: cls, interactive: def.interactive, pane: pane,
        });
        tag(layer, id);
      }
    } else {
      layer = L.geoJSON(f, {
        interactive: def.interactive,
        pane: pane,
        style: function () {
          return {color: colour, weight: s.weight, opacity: s.opacity, fillColor: s.fill || colour,
                  fillOpacity: s.fill_opacity, dashArray: s.dash, className: cls};
        },
        pointToLayer: function (_, latlng) {
          return L.circleMarker(latlng, {radius: s.radius, color: colour, className: cls, pane: pane});
        },
      });
      layer.eachLayer(function (part) { tag(part, id); });
    }
    if (def.interactive) {
      layer.bindPopup(function () { return popupContent(def, f); }, {maxWidth: 360});
      if (def.tooltip) {
        layer.bindTooltip(function () {
          var span = document.createElement("span");
          span.textContent = text((f.properties || {})[def.tooltip]);
          return span;
        }, {sticky: true});
      }
    }
    return layer;
  }

  function apply(state, features, geometryKey) {
    var def = state.def, items = state.items, nowMs = serverNow();
    var seen = new Set(), add = [], remove = [];
    features.forEach(function (f) {
      if (f.id === null || f.id === undefined) return;
      var id = String(f.id);
      seen.add(id);
      var colour = colourOf(def.style, f.properties || {}, nowMs);
      var sig = colour + "|" + JSON.stringify(f.properties) + "|" +
        (def.geometry === "point" ? JSON.stringify(f.geometry) : geometryKey);
      var cur = items.get(id);
      if (cur && cur.sig === sig) return;
      if (cur) remove.push(cur.layer);
      var layer = makeLayer(def, f, colour, state.pane);
      if (!layer) { items.delete(id); return; }
      items.set(id, {layer: layer, sig: sig});
      add.push(layer);
    });
    items.forEach(function (cur, id) {
      if (!seen.has(id)) { remove.push(cur.layer); items.delete(id); }
    });
    var group = state.group;
    if (group.removeLayers && group.addLayers) {   // marker clusters take whole batches
      if (remove.length) group.removeLayers(remove);
      if (add.length) group.addLayers(add);
    } else {
      remove.forEach(function (l) { group.removeLayer(l); });
      add.forEach(function (l) { group.addLayer(l); });
    }
    state.count = items.size;
  }

  function keepWindow(state, features, incremental) {
    var def = state.def;
    if (!incremental) state.cache = new Map();
    features.forEach(function (f) { state.cache.set(String(f.id), f); });
    var oldest = serverNow() - def.window_s * 1000;
    var kept = [];
    state.cache.forEach(function (f, id) {
      var t = Date.parse((f.properties || {}).observed_at);
      if (!isNaN(t) && t < oldest) state.cache.delete(id); else kept.push(f);
    });
    if (kept.length > def.limit) {
      kept.sort(function (a, b) {
        return Date.parse(b.properties.observed_at) - Date.parse(a.properties.observed_at);
      });
      kept.slice(def.limit).forEach(function (f) { state.cache.delete(String(f.id)); });
      kept = kept.slice(0, def.limit);
    }
    return kept;
  }

  function poll(map, state, options) {
    var def = state.def;
    if (!map.hasLayer(state.group)) return;
    if (state.busy) { state.again = true; return; }
    var params = new URLSearchParams();
    Object.keys(def.params).forEach(function (k) {
      var v = def.params[k];
      (Array.isArray(v) ? v : [v]).forEach(function (x) { params.append(k, x); });
    });
    params.set("limit", String(def.limit));
    var bbox = null, tolerance = null;
    if (def.bbox) { bbox = bboxOf(map); if (bbox) params.set("bbox", bbox); }
    if (def.simplify) {
      tolerance = Math.min(1, degreesPerPixel(map.getZoom())).toPrecision(2);
      params.set("simplify", tolerance);
    }
    if (def.window_s) params.set("start", new Date(serverNow() - def.window_s * 1000).toISOString());
    var viewKey = bbox + "|" + tolerance;
    var incremental = def.since && state.stamp && state.viewKey === viewKey && state.polls % FULL_EVERY !== 0;
    if (incremental) params.set("since", new Date(Date.parse(state.stamp) - OVERLAP_MS).toISOString());
    state.busy = true;
    fetch(def.endpoint + "?" + params.toString(), {credentials: "same-origin", headers: {Accept: "application/geo+json"}})
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign(options.login || "/login");
          throw new Error("signed out");
        }
        if (!r.ok) throw new Error(def.name + ": HTTP " + r.status);
        return r.json();
      })
      .then(function (fc) {
        var stamp = Date.parse(fc.timeStamp);
        if (!isNaN(stamp)) BW.clockOffsetMs = stamp - Date.now();
        var features = fc.features || [];
        if (def.since) features = keepWindow(state, features, incremental);
        state.stamp = fc.timeStamp;
        state.viewKey = viewKey;
        apply(state, features, tolerance);
        state.error = null;
        state.updated = new Date();
      })
      .catch(function (e) { state.error = String(e && e.message || e); })
      .then(function () {
        state.busy = false;
        state.polls += 1;
        showStatus();
        if (state.again) { state.again = false; poll(map, state, options); }
      });
  }

  var statusEl = null;
  function showStatus() {
    if (!statusEl) return;
    var errors = [], last = null, pending = false;
    Object.keys(BW.layers).forEach(function (k) {
      var s = BW.layers[k];
      if (s.error) errors.push(s.error);
      if (s.updated && (!last || s.updated > last)) last = s.updated;
      if (!s.polls && s.enabled()) pending = true;
    });
    statusEl.className = "bw-status" + (errors.length ? " bw-status-error" : "");
    statusEl.textContent = errors.length ? "Not updating: " + errors[0]
      : last ? "Live \u00b7 updated " + last.toISOString().slice(11, 19) + "Z" : "Loading\u2026";
    document.body.setAttribute("data-bw-live", errors.length ? "error" : pending ? "loading" : "ok");
  }

  function duration(seconds) {
    if (seconds % 86400 === 0) return seconds / 86400 + " d";
    if (seconds % 3600 === 0) return seconds / 3600 + " h";
    return Math.round(seconds / 60) + " min";
  }

  // What each colour means, per layer, from the same definitions that colour the features.
  function legendOf(layers) {
    var root = L.DomUtil.create("div", "bw-legend");
    layers.forEach(function (entry) {
      var def = entry.def, s = def.style, rows = [];
      if (def.base) return;
      if (s.age_of) {
        s.age_steps.forEach(function (step) { rows.push(["\u2264 " + duration(step[0]) + " ago", step[1]]); });
        rows.push(["older or never", s.default]);
      } else if (s.by) {
        Object.keys(s.colours).forEach(function (k) { rows.push([k.replace(/_/g, " "), s.colours[k]]); });
      }
      if (!rows.length) return;
      var block = document.createElement("div");
      var h = document.createElement("strong");
      h.textContent = def.name;
      block.appendChild(h);
      rows.forEach(function (row) {
        var line = document.createElement("div");
        var sw = document.createElement("span");
        sw.className = "bw-swatch";
        sw.style.background = row[1];
        line.appendChild(sw);
        line.appendChild(document.createTextNode(row[0]));
        block.appendChild(line);
      });
      root.appendChild(block);
    });
    return root;
  }

  BW.live = function (map, layers, options) {
    options = options || {};
    if (!map.getPane("bw-base")) {
      map.createPane("bw-base");
      map.getPane("bw-base").style.zIndex = 250;   // above tiles, below every overlay
      map.createPane("bw-top");
      map.getPane("bw-top").style.zIndex = 620;    // above markers and clusters, below tooltips and popups
    }
    var Status = L.Control.extend({
      onAdd: function () { statusEl = L.DomUtil.create("div", "bw-status"); statusEl.textContent = "Loading\u2026"; return statusEl; },
    });
    new Status({position: "bottomleft"}).addTo(map);
    if (options.legend) {
      var Legend = L.Control.extend({onAdd: function () { return legendOf(layers); }});
      new Legend({position: "bottomright"}).addTo(map);
    }
    layers.forEach(function (entry) {
      var def = entry.def;
      var state = {
        def: def, group: entry.group, items: new Map(), cache: new Map(), polls: 0, busy: false, again: false,
        stamp: null, viewKey: null, error: null, updated: null, count: 0, pane: def.base ? "bw-base" : def.top ? "bw-top" : undefined,
        enabled: function () { return map.hasLayer(entry.group); },
      };
      BW.layers[def.key] = state;
      setInterval(function () { poll(map, state, options); }, Math.max(1, def.refresh_s) * 1000);
      entry.group.on("add", function () { poll(map, state, options); });
      poll(map, state, options);
    });
    var timer = null;
    map.on("moveend", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        Object.keys(BW.layers).forEach(function (k) { poll(map, BW.layers[k], options); });
      }, MOVE_DEBOUNCE_MS);
    });
  };
})();
