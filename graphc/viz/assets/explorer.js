// graphc's graph explorer: draws the graphs of compiled functions that graphc/viz/html.py
// embeds in the page (the JSON in #graphc-data), laid out by dagre (vendored beside this
// file). Each stage of each function is selectable; groups (fused kernels, the gradient
// subgraph) collapse into one box and expand again; a search marks nodes by name or op;
// hovering a node shows its shape, dtype, source line and kernel time.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const data = JSON.parse(document.getElementById("graphc-data").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { fn: 0, stage: 0, collapsed: new Set(), view: { x: 0, y: 0, k: 1 } };

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (parent) parent.appendChild(node);
    return node;
  }

  function current() {
    return data.functions[state.fn].stages[state.stage];
  }

  // ----- what a node says -------------------------------------------------------------------
  function lines(node) {
    let head = node.op + (node.name ? " " + node.name : "");
    if (node.value !== undefined) head = "const " + node.value;
    if (node.grad) head = "\u2207 " + head;
    const out = [head, node.shape + " " + node.dtype];
    if (node.updates) out.push("\u2192 " + node.updates.join(", "));
    return out;
  }

  function details(node) {
    const rows = [["op", node.op]];
    if (node.name) rows.push(["name", node.name]);
    if (node.value !== undefined) rows.push(["value", node.value]);
    rows.push(["shape", node.shape], ["dtype", node.dtype], ["built at", node.origin]);
    if (node.grad) rows.push(["gradient of", node.of || "(built by gc.grad)"]);
    if (node.members) rows.push(["computes", node.members.join(", ")]);
    if (node.expr) rows.push(["expression", node.expr]);
    if (node.ms !== undefined) rows.push(["time", node.ms.toFixed(4) + " ms per call"]);
    if (node.output !== undefined) rows.push(["output", String(node.output)]);
    if (node.updates) rows.push(["new value of", node.updates.join(", ")]);
    return rows;
  }

  function groupTitle(group) {
    return group.title + " (" + group.nodes.length + " nodes)";
  }

  // ----- colour by kernel time ----------------------------------------------------------------
  function timeColour(ms, most) {
    const t = most > 0 ? Math.sqrt(ms / most) : 0;
    return "hsl(" + (50 - 50 * t).toFixed(1) + ", 95%, " + (92 - 40 * t).toFixed(1) + "%)";
  }

  // ----- layout -------------------------------------------------------------------------------
  // dagre lays out a layered drawing; its cost grows with the ranks each edge spans (it
  // routes an edge through a dummy node on every rank it crosses), and a training step has
  // many long edges (params read by the forward pass and the update, activations kept for
  // the backward pass). So dagre gets each node's tightest input edge and every edge that
  // spans at most SPAN ranks; the other ("long") edges are drawn afterwards as curves.
  const SPAN = 2;

  function visibleGraph(stage) {
    const ownerOf = new Map();
    stage.groups.forEach((group, k) => group.nodes.forEach((i) => ownerOf.set(i, k)));
    const keyOf = (i) => {
      const k = ownerOf.get(i);
      return k !== undefined && state.collapsed.has(k) ? "g" + k : "n" + i;
    };
    const items = new Map();  // key -> {key, position, node index or group}
    stage.nodes.forEach((node, i) => {
      const key = keyOf(i);
      if (!items.has(key)) {
        items.set(key, key[0] === "g" ? { key, position: i, group: ownerOf.get(i) }
                                      : { key, position: i, index: i });
      }
    });
    const edges = new Map();
    for (const [from, to] of stage.edges) {
      const a = keyOf(from), b = keyOf(to);
      if (a !== b) edges.set(a + ">" + b, [a, b]);
    }
    return { items, edges: [...edges.values()], ownerOf };
  }

  function ranks(items, edges) {
    const order = [...items.values()].sort((p, q) => p.position - q.position);
    const preds = new Map(order.map((it) => [it.key, []]));
    const succs = new Map(order.map((it) => [it.key, []]));
    for (const [a, b] of edges) { preds.get(b).push(a); succs.get(a).push(b); }
    const rank = new Map();
    for (const it of order) {
      let r = 0;
      for (const a of preds.get(it.key)) if (rank.has(a)) r = Math.max(r, rank.get(a) + 1);
      rank.set(it.key, r);
    }
    for (const it of order) {  // a leaf sits just above its first reader
      if (preds.get(it.key).length || !succs.get(it.key).length) continue;
      rank.set(it.key, Math.max(0, Math.min(...succs.get(it.key).map((b) => rank.get(b))) - 1));
    }
    return { rank, preds };
  }

  function layout(stage) {
    const { items, edges, ownerOf } = visibleGraph(stage);
    const { rank, preds } = ranks(items, edges);
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "TB", nodesep: 14, ranksep: 26, edgesep: 6, marginx: 24, marginy: 24 });
    g.setDefaultEdgeLabel(() => ({}));
    const size = (texts) => ({
      width: Math.max(...texts.map((t) => t.length)) * 6.6 + 18,
      height: 14 * texts.length + 10,
    });
    for (const it of items.values()) {
      const texts = it.group !== undefined
        ? ["\u25b8 " + stage.groups[it.group].title, stage.groups[it.group].nodes.length + " nodes"]
        : lines(stage.nodes[it.index]);
      g.setNode(it.key, Object.assign({ item: it }, size(texts)));
    }
    const long = [];
    for (const [a, b] of edges) {
      const tight = preds.get(b).reduce((best, p) => (best === null || rank.get(p) > rank.get(best) ? p : best), null);
      if (a === tight || rank.get(b) - rank.get(a) <= SPAN) g.setEdge(a, b);
      else long.push([a, b]);
    }
    const started = performance.now();
    dagre.layout(g);
    window.graphcLayoutMs = performance.now() - started;
    return { g, long, ownerOf };
  }

  // ----- drawing ------------------------------------------------------------------------------
  function curve(from, to) {
    const x1 = from.x, y1 = from.y + from.height / 2, x2 = to.x, y2 = to.y - to.height / 2;
    const bend = Math.max(30, Math.abs(y2 - y1) / 3);
    return "M" + x1.toFixed(1) + "," + y1.toFixed(1) + "C" + x1.toFixed(1) + "," + (y1 + bend).toFixed(1)
      + " " + x2.toFixed(1) + "," + (y2 - bend).toFixed(1) + " " + x2.toFixed(1) + "," + y2.toFixed(1);
  }

  function render() {
    const stage = current();
    const { g, long, ownerOf } = layout(stage);
    const scene = $("scene");
    scene.replaceChildren();
    const most = Math.max(0, ...stage.nodes.map((n) => n.ms || 0));
    const edges = el("g", { class: "edges" }, scene);
    const nodes = el("g", { class: "nodes" }, scene);
    for (const e of g.edges()) {
      const points = g.edge(e).points;
      const d = points.map((p, k) => (k ? "L" : "M") + p.x.toFixed(1) + "," + p.y.toFixed(1)).join("");
      el("path", { class: "edge", d: d, "marker-end": "url(#arrow)" }, edges);
    }
    for (const [a, b] of long) {
      el("path", { class: "edge long", d: curve(g.node(a), g.node(b)), "marker-end": "url(#arrow)" }, edges);
    }
    for (const key of g.nodes()) {
      const box = g.node(key), it = box.item;
      const left = box.x - box.width / 2, top = box.y - box.height / 2;
      if (it.group !== undefined) {
        const group = stage.groups[it.group];
        const item = el("g", { class: "node group kind-" + group.kind, "data-group": it.group,
                               id: "group-" + it.group }, nodes);
        el("rect", { x: left, y: top, width: box.width, height: box.height, rx: 6 }, item);
        ["\u25b8 " + group.title, group.nodes.length + " nodes"].forEach((text, k) => {
          el("text", { x: box.x, y: top + 16 + 14 * k }, item).textContent = text;
        });
        item.addEventListener("click", () => toggle(it.group));
        hover(item, () => [["group", group.title], ["nodes", String(group.nodes.length)],
                           ["click", "expand"]]);
        continue;
      }
      const node = stage.nodes[it.index];
      const k = ownerOf.get(it.index);
      const classes = ["node", "kind-" + node.kind];
      if (node.grad) classes.push("grad");
      if (node.output !== undefined || node.updates) classes.push("result");
      const item = el("g", { class: classes.join(" "), "data-node": it.index,
                             id: "node-" + it.index }, nodes);
      if (k !== undefined) {  // hovering shows the group's other nodes; a double click folds it
        item.dataset.group = String(k);
        item.addEventListener("mouseenter", () => mark(k, true));
        item.addEventListener("mouseleave", () => mark(k, false));
        item.addEventListener("dblclick", () => toggle(k));
      }
      const rect = el("rect", { x: left, y: top, width: box.width, height: box.height,
                                rx: node.kind === "input" || node.kind === "param" ? 12 : 3 }, item);
      if (node.ms !== undefined) rect.style.fill = timeColour(node.ms, most);
      lines(node).forEach((text, j) => {
        el("text", { x: box.x, y: top + 16 + 14 * j }, item).textContent = text;
      });
      hover(item, () => details(node));
    }
    const graph = g.graph();
    state.size = { width: graph.width || 1, height: graph.height || 1 };
    groupsPanel(stage);
    legend(stage, most);
    search();
    fit();
    document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
  }

  function mark(k, on) {
    document.querySelectorAll('#scene .node[data-group="' + k + '"]').forEach((item) => {
      item.classList.toggle("in-group", on);
    });
  }

  function groupsPanel(stage) {
    const panel = $("groups");
    panel.replaceChildren();
    panel.hidden = !stage.groups.length;
    stage.groups.forEach((group, k) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.group = String(k);
      button.className = "group-toggle kind-" + group.kind;
      const collapsed = state.collapsed.has(k);
      button.textContent = (collapsed ? "\u25b8 " : "\u25be ") + groupTitle(group);
      button.title = collapsed ? "expand" : "collapse";
      button.addEventListener("click", () => toggle(k));
      button.addEventListener("mouseenter", () => mark(k, true));
      button.addEventListener("mouseleave", () => mark(k, false));
      panel.appendChild(button);
    });
  }

  function legend(stage, most) {
    const parts = [stage.nodes.length + " nodes, " + stage.edges.length + " edges",
                   "layout " + window.graphcLayoutMs.toFixed(0) + " ms"];
    if (most > 0) parts.push("kernel time: pale 0 \u2026 red " + most.toFixed(3) + " ms");
    if (stage.groups.length) parts.push("groups fold and unfold from the list (or by a double click on a node)");
    $("legend").textContent = parts.join(" \u00b7 ");
  }

  function toggle(k) {
    if (state.collapsed.has(k)) state.collapsed.delete(k); else state.collapsed.add(k);
    render();
  }

  // ----- hover --------------------------------------------------------------------------------
  function hover(item, rows) {
    const tip = $("tooltip");
    item.addEventListener("mouseenter", () => {
      tip.replaceChildren();
      for (const [key, value] of rows()) {
        const row = document.createElement("div");
        const name = document.createElement("b");
        name.textContent = key + ": ";
        row.append(name, document.createTextNode(value));
        tip.appendChild(row);
      }
      tip.hidden = false;
    });
    item.addEventListener("mousemove", (event) => {
      tip.style.left = event.clientX + 14 + "px";
      tip.style.top = event.clientY + 14 + "px";
    });
    item.addEventListener("mouseleave", () => { tip.hidden = true; });
  }

  // ----- search -------------------------------------------------------------------------------
  function search() {
    const query = $("search").value.trim().toLowerCase();
    const stage = current();
    document.querySelectorAll(".match").forEach((e) => e.classList.remove("match"));
    state.matches = [];
    if (!query) { $("status").textContent = ""; return; }
    stage.nodes.forEach((node, i) => {
      if (!((node.name || "").toLowerCase().includes(query) || node.op.toLowerCase().includes(query))) return;
      const k = stage.groups.findIndex((group) => group.nodes.includes(i));
      const item = $("node-" + i) || (k >= 0 ? $("group-" + k) : null);
      if (item && !item.classList.contains("match")) {
        item.classList.add("match");
        state.matches.push(item);
      }
    });
    const found = state.matches.length;
    $("status").textContent = found === 1 ? "1 match" : found + " matches";
  }

  function focusMatch() {
    if (!state.matches || !state.matches.length) return;
    state.cursor = ((state.cursor || 0) + 1) % state.matches.length;
    const box = state.matches[state.cursor].getBBox();
    const view = $("view").getBoundingClientRect();
    state.view.k = Math.max(state.view.k, 1);
    state.view.x = view.width / 2 - (box.x + box.width / 2) * state.view.k;
    state.view.y = view.height / 2 - (box.y + box.height / 2) * state.view.k;
    apply();
  }

  // ----- pan and zoom -------------------------------------------------------------------------
  function apply() {
    const v = state.view;
    $("scene").setAttribute("transform", "translate(" + v.x + "," + v.y + ") scale(" + v.k + ")");
  }

  function fit() {
    const view = $("view").getBoundingClientRect();
    const k = Math.min(1, view.width / state.size.width, view.height / state.size.height);
    state.view = { k: k, x: (view.width - state.size.width * k) / 2, y: 0 };
    apply();
  }

  function panAndZoom() {
    const svg = $("canvas");
    svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      const v = state.view, box = svg.getBoundingClientRect();
      const k = Math.min(8, Math.max(0.02, v.k * Math.exp(-event.deltaY * 0.0015)));
      const px = event.clientX - box.left, py = event.clientY - box.top;
      v.x = px - (px - v.x) * (k / v.k);
      v.y = py - (py - v.y) * (k / v.k);
      v.k = k;
      apply();
    }, { passive: false });
    let drag = null;
    svg.addEventListener("mousedown", (event) => {
      drag = { x: event.clientX - state.view.x, y: event.clientY - state.view.y };
    });
    window.addEventListener("mousemove", (event) => {
      if (!drag) return;
      state.view.x = event.clientX - drag.x;
      state.view.y = event.clientY - drag.y;
      apply();
    });
    window.addEventListener("mouseup", () => { drag = null; });
  }

  // ----- the controls -------------------------------------------------------------------------
  function fillStages() {
    const select = $("stage");
    select.replaceChildren();
    const fn = data.functions[state.fn];
    fn.stages.forEach((stage, k) => {
      const option = document.createElement("option");
      option.value = String(k);
      option.textContent = stage.name;
      select.appendChild(option);
    });
    state.stage = Math.max(0, fn.stages.findIndex((s) => s.name === fn.initial));
    select.value = String(state.stage);
  }

  function start() {
    document.title = data.title;
    $("title").textContent = data.title;
    const functions = $("function");
    data.functions.forEach((fn, k) => {
      const option = document.createElement("option");
      option.value = String(k);
      option.textContent = fn.name;
      functions.appendChild(option);
    });
    functions.hidden = data.functions.length < 2;
    functions.addEventListener("change", () => {
      state.fn = Number(functions.value);
      state.collapsed.clear();
      fillStages();
      render();
    });
    $("stage").addEventListener("change", () => {
      state.stage = Number($("stage").value);
      state.collapsed.clear();
      render();
    });
    $("search").addEventListener("input", search);
    $("search").addEventListener("keydown", (event) => { if (event.key === "Enter") focusMatch(); });
    $("collapse-all").addEventListener("click", () => {
      current().groups.forEach((group, k) => state.collapsed.add(k));
      render();
    });
    $("expand-all").addEventListener("click", () => { state.collapsed.clear(); render(); });
    $("fit").addEventListener("click", fit);
    panAndZoom();
    fillStages();
    render();
  }

  start();
})();
