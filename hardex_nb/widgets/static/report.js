/** hardex_nb ReportView: per-label table with warnings; a label opens its error details. */
import { fmt, h, keepKeys, messages, s } from "./dom.js";

/** The summary chips' names (the report's own attribute names are lower case). */
const SUMMARY_NAMES = { map: "mAP", map50: "mAP50", map75: "mAP75" };
const KIND_COLORS = {
  tp: "#16a34a",
  missed: "#f97316",
  false: "#dc2626",
  difficult: "#7c3aed",
  ignored: "#64748b",
};
const KIND_NAMES = {
  tp: "correct",
  missed: "missed",
  false: "false",
  difficult: "difficult (not counted)",
  ignored: "on an ignore region (not counted)",
};

const PLOT = 150; // a plot's side in pixels (the axes' unit square scaled)

/** An empty square plot with its frame, axis names and title. */
function frame(title, x, y) {
  const svg = s("svg", {
    viewBox: `-28 -18 ${PLOT + 40} ${PLOT + 48}`,
    width: PLOT + 40,
    height: PLOT + 48,
    class: "plot",
  });
  svg.append(
    s("rect", { x: 0, y: 0, width: PLOT, height: PLOT, class: "plot-frame" }),
    text(PLOT / 2, -6, title, "middle", "plot-title"),
    text(PLOT / 2, PLOT + 24, x, "middle"),
    text(-6, PLOT, "0", "end"),
    text(-6, 8, "1", "end"),
  );
  const name = text(-16, PLOT / 2, y, "middle");
  name.setAttribute("transform", `rotate(-90 -16 ${PLOT / 2})`);
  svg.append(name);
  return svg;
}

function text(x, y, content, anchor, cls = "plot-text") {
  const t = s("text", { x, y, "text-anchor": anchor, class: cls });
  t.textContent = content;
  return t;
}

/** A point of the unit square in plot pixels (y up). */
const px = (x, y) => [x * PLOT, (1 - y) * PLOT];

/** One label's precision-recall curve, the report threshold's point and the best F1's. */
function prPlot(c) {
  const svg = frame(c.label, "recall", "precision");
  svg.setAttribute("data-curve", c.label);
  const d = c.points.map(([r, p], i) => `${i ? "L" : "M"}${px(r, p).join(" ")}`).join("");
  svg.append(s("path", { d, class: "plot-line" }));
  for (const [kind, p] of [
    ["best", c.best],
    ["at", c.at],
  ]) {
    if (!p) continue;
    const [x, y] = px(p.recall, p.precision);
    const mark = s("circle", { cx: x, cy: y, r: kind === "at" ? 3.5 : 5, class: `mark-${kind}` });
    mark.setAttribute("data-mark", kind);
    const tip = s("title", {});
    const what = kind === "at" ? "the report's threshold" : "best F1";
    tip.textContent = `${what} ${fmt(p.threshold, true)}: precision ${fmt(p.precision, true)}, recall ${fmt(p.recall, true)}, F1 ${fmt(p.f1, true)}`;
    mark.append(tip);
    svg.append(mark);
  }
  if (c.best)
    svg.append(text(PLOT - 4, PLOT - 6, `best F1 at ${fmt(c.best.threshold, true)}`, "end"));
  return svg;
}

/** The reliability diagram: each score bin's share right against its mean confidence. */
function reliabilityPlot(cal) {
  const svg = frame(`calibration · ECE ${fmt(cal.ece, true)}`, "confidence", "share right");
  svg.setAttribute("data-calibration", "");
  svg.append(
    s("path", { d: `M${px(0, 0).join(" ")}L${px(1, 1).join(" ")}`, class: "plot-diagonal" }),
  );
  for (const b of cal.bins) {
    if (!b.count) continue;
    const [x0] = px(b.low, 0);
    const [x1, top] = px(b.high, b.accuracy);
    const bar = s("rect", {
      x: x0 + 1,
      y: top,
      width: x1 - x0 - 2,
      height: PLOT - top,
      class: "plot-bar",
    });
    const tip = s("title", {});
    tip.textContent = `${fmt(b.low, true)}–${fmt(b.high, true)}: ${fmt(b.count)} predictions, mean confidence ${fmt(b.confidence, true)}, share right ${fmt(b.accuracy, true)}`;
    bar.append(tip);
    svg.append(bar);
  }
  return svg;
}

// one label per row, one error type per column: the dAP fixing that type within the label
// gives, and its count, which opens that label's errors of that type
function tideLabelTable(tide, open) {
  const names = Object.fromEntries(tide.errors.map((e) => [e.type, e.name]));
  return h(
    "table",
    { class: "hx-table", "data-role": "tide-labels" },
    h(
      "tr",
      {},
      h("th", { style: "text-align:left" }, "label"),
      h("th", {}, "AP"),
      ...tide.errors.map((e) => h("th", { title: `${e.name}: dAP, count` }, e.type)),
    ),
    ...tide.labels.map((row) =>
      h(
        "tr",
        { "data-tide-label": row.label },
        h("td", { style: "text-align:left" }, row.label),
        h("td", {}, fmt(row.ap / 100, true)),
        ...row.errors.map((e) =>
          h(
            "td",
            { "data-tide-type": e.type },
            `${(e.dAP ?? 0).toFixed(2)} `,
            e.count
              ? h(
                  "button",
                  {
                    "data-action": "tide",
                    title: `${e.count} ${names[e.type]} error(s) of ${row.label}`,
                    onclick: () => open(e.type, row.label),
                  },
                  fmt(e.count),
                )
              : "",
          ),
        ),
      ),
    ),
  );
}

/**
 * TIDE's breakdown: per error type the AP it costs (a bar) and its count, which opens the
 * images behind it.
 */
function tideTable(tide, open) {
  const most = Math.max(1, ...tide.errors.map((e) => e.dAP ?? 0));
  return h(
    "div",
    { class: "tide", "data-role": "tide" },
    h(
      "b",
      {},
      `Where AP${Math.round(100 * tide.iou)} ${fmt(tide.ap / 100, true)} is lost (TIDE dAP)`,
    ),
    h(
      "table",
      { class: "hx-table" },
      ...tide.errors.map((e) =>
        h(
          "tr",
          { "data-tide": e.type },
          h("td", { style: "text-align:left" }, e.name),
          h(
            "td",
            {},
            h("span", { class: "tide-bar", style: `width:${(60 * (e.dAP ?? 0)) / most}px` }),
            ` ${(e.dAP ?? 0).toFixed(2)}`,
          ),
          h(
            "td",
            {},
            e.count
              ? h(
                  "button",
                  { "data-action": "tide", onclick: () => open(e.type) },
                  `${fmt(e.count)} error(s)`,
                )
              : "0",
          ),
        ),
      ),
    ),
    ...(tide.labels?.length > 1 ? [h("b", {}, "By label"), tideLabelTable(tide, open)] : []),
  );
}

/** A share as the manual shows it: 31.7% (empty for a missing value). */
function percent(v) {
  return v === null || v === undefined ? "" : `${(100 * v).toFixed(1)}%`;
}

export default {
  render({ model, el }) {
    const root = keepKeys(h("div", { class: "hx hx-report", tabindex: -1 }));
    el.append(root);
    const head = h("div", { class: "bar" });
    const summary = h("div", { class: "bar" });
    const table = h("table", { class: "hx-table" });
    const detail = h("div");
    const plots = h("div", { class: "plots" });
    root.append(head, summary, table, plots, detail);
    messages(model, root);
    const urls = [];

    function renderTable() {
      head.replaceChildren(
        h("b", { class: "report-header" }, model.get("header")),
        ...model.get("notes").map((n) => h("div", { class: "error report-note" }, n)),
      );
      summary.replaceChildren(
        ...Object.entries(model.get("summary")).map(([k, v]) =>
          h(
            "span",
            { class: "chip", "data-summary": k },
            `${SUMMARY_NAMES[k] ?? k} ${fmt(v, true)}`,
          ),
        ),
      );
      const rows = model.get("table");
      const fractions = new Set(model.get("fractions"));
      const percents = new Set(model.get("percents"));
      const warnings = model.get("cell_warnings");
      const cols = rows.length ? Object.keys(rows[0]) : [];
      const cell = (r, c, warning) => {
        const text = percents.has(c) ? percent(r[c]) : fmt(r[c], fractions.has(c));
        const icon = warning
          ? h("span", { class: "warn-icon", title: warning, "data-warning": c }, " ⚠")
          : null;
        return h(
          "td",
          {
            style: c === "warning" || c === "label" ? "text-align:left" : "",
            class: c === "warning" && r[c] ? "muted" : warning ? "warned" : "",
            title: warning,
          },
          text,
          icon,
        );
      };
      table.replaceChildren(
        h("tr", {}, ...cols.map((c) => h("th", {}, c.replace("_", " ")))),
        ...rows.map((r, i) =>
          h(
            "tr",
            {
              class: "clickable",
              "data-label": r.label,
              onclick: () => model.send({ action: "label", label: r.label }),
            },
            ...cols.map((c) => cell(r, c, warnings[i]?.[c])),
          ),
        ),
      );
    }
    function renderPlots() {
      const curves = model.get("curves").filter((c) => c.points.length);
      const cal = model.get("calibration");
      const tide = model.get("tide");
      plots.replaceChildren(
        ...(tide.errors
          ? [
              // label: a per-label count (undefined, left out of the message, for the total)
              tideTable(tide, (type, label) => model.send({ action: "tide", error: type, label })),
            ]
          : []),
        ...curves.map((c) => prPlot(c)),
        ...(cal.bins ? [reliabilityPlot(cal)] : []),
      );
    }
    model.on("msg:custom", (msg, buffers) => {
      if (msg.type !== "images") return;
      for (const u of urls.splice(0)) URL.revokeObjectURL(u);
      const images = model.get("errors");
      const total = model.get("error_images"),
        label = model.get("label");
      if (!images.length) {
        detail.replaceChildren(
          h(
            "div",
            { class: "empty", "data-role": "no-errors" },
            `No errors for ${label}: every image of it was right.`,
          ),
        );
        return;
      }
      detail.replaceChildren(
        h(
          "div",
          { class: "bar" },
          h(
            "b",
            { "data-role": "errors-title" },
            `${fmt(total)} image(s) with errors for ${label}${total > images.length ? ` (the first ${images.length} shown)` : ""} · click one to open it`,
          ),
          h(
            "span",
            { class: "legend" },
            ...Object.entries(KIND_NAMES).map(([k, n]) =>
              h("span", { style: `color:${KIND_COLORS[k]}` }, `■ ${n}`),
            ),
          ),
        ),
        h(
          "div",
          { class: "errors" },
          ...images.map((im, k) => {
            const url = URL.createObjectURL(new Blob([buffers[k]], { type: "image/jpeg" }));
            urls.push(url);
            const svg = s("svg", {
              viewBox: `0 0 ${im.width} ${im.height}`,
              preserveAspectRatio: "none",
            });
            const w = im.width / 240;
            for (const b of im.boxes) {
              svg.append(
                s("rect", {
                  x: b.x0,
                  y: b.y0,
                  width: b.x1 - b.x0,
                  height: b.y1 - b.y0,
                  fill: "none",
                  stroke: KIND_COLORS[b.kind],
                  "stroke-width": 2.5 * w,
                  "data-kind": b.kind,
                }),
              );
            }
            const stage = h(
              "div",
              { class: "stage", style: `aspect-ratio: ${im.width} / ${im.height}` },
              h("img", { src: url, alt: im.name }),
              svg,
            );
            const counts = Object.keys(KIND_NAMES)
              .map((kd) => `${im.boxes.filter((b) => b.kind === kd).length} ${KIND_NAMES[kd]}`)
              .join(" · ");
            return h(
              "figure",
              {
                "data-sample": im.sample_id,
                class: "clickable",
                title: "open in an Annotator below",
                onclick: () => model.send({ action: "open", sample_id: im.sample_id }),
              },
              stage,
              h(
                "figcaption",
                { class: "muted" },
                `${im.name} · ${im.predicted ? `predicted ${im.predicted}` : counts}`,
              ),
            );
          }),
        ),
      );
    });
    model.on("change:table", renderTable);
    model.on("change:curves", renderPlots);
    model.on("change:calibration", renderPlots);
    renderTable();
    renderPlots();
    return () => {
      for (const u of urls) URL.revokeObjectURL(u);
    };
  },
};
