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
    root.append(head, summary, table, detail);
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
            class: c === "warning" && r[c] ? "muted" : "",
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
    renderTable();
    return () => {
      for (const u of urls) URL.revokeObjectURL(u);
    };
  },
};
