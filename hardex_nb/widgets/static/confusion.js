/** hardex_nb ConfusionMatrix: clickable cells open the samples behind them. */
import { fmt, h, keepKeys, messages } from "./dom.js";

export default {
  render({ model, el }) {
    const root = keepKeys(h("div", { class: "hx hx-confusion", tabindex: -1 }));
    el.append(root);
    const table = h("table", { class: "hx-table" });
    const detail = h("div");
    root.append(
      h("div", { class: "muted" }, "rows: true label · columns: predicted · click a cell"),
      table,
      detail,
    );
    messages(model, root);
    const urls = [];

    function renderTable() {
      const names = model.get("names"),
        m = model.get("matrix");
      const max = Math.max(1, ...m.flat());
      const [ct, cp] = model.get("cell");
      table.replaceChildren(
        h("tr", {}, h("th", {}, "true \\ predicted"), ...names.map((n) => h("th", {}, n))),
        ...names.map((t, i) =>
          h(
            "tr",
            {},
            h("th", {}, t),
            ...names.map((p, j) => {
              const v = m[i][j];
              const alpha = v ? 0.12 + 0.75 * (v / max) : 0;
              const hue = i === j ? "22,163,74" : "220,38,38";
              return h(
                "td",
                {
                  class: "cell",
                  "data-true": t,
                  "data-predicted": p,
                  style: `background: rgba(${hue},${alpha.toFixed(3)}); ${t === ct && p === cp ? "outline: 2px solid #2563eb;" : ""}`,
                  onclick: () => model.send({ action: "cell", true: t, predicted: p }),
                },
                fmt(v),
              );
            }),
          ),
        ),
      );
    }
    model.on("msg:custom", (msg, buffers) => {
      if (msg.type !== "thumbs") return;
      for (const u of urls.splice(0)) URL.revokeObjectURL(u);
      const names = model.get("cell_names");
      const [t, p] = model.get("cell");
      detail.replaceChildren(
        h(
          "div",
          { "data-role": "cell-title" },
          `${fmt(model.get("cell_ids").length)} image(s): true ${t}, predicted ${p}${model.get("cell_ids").length > msg.ids.length ? ` (the first ${msg.ids.length} shown)` : ""} · click one to open it`,
        ),
        h(
          "div",
          { class: "grid" },
          ...msg.ids.map((id, k) => {
            const url = URL.createObjectURL(new Blob([buffers[k]], { type: "image/jpeg" }));
            urls.push(url);
            return h(
              "div",
              {
                class: "card",
                "data-sample": id,
                title: `${names[k]}: open in an Annotator below`,
                onclick: () => model.send({ action: "open", sample_id: id }),
              },
              h("div", { class: "thumb" }, h("img", { src: url, alt: names[k] })),
              h("div", { class: "name" }, names[k]),
            );
          }),
        ),
      );
    });
    model.on("change:matrix", renderTable);
    model.on("change:cell", renderTable);
    renderTable();
    return () => {
      for (const u of urls) URL.revokeObjectURL(u);
    };
  },
};
