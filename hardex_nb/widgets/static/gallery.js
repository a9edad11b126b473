/** hardex_nb Gallery: paged thumbnails, filters, multi-select and batch actions. */
import { connection, h, keepKeys, messages } from "./dom.js";

/** @param {DataView} view */
function blobUrl(view) {
  return URL.createObjectURL(new Blob([view], { type: "image/jpeg" }));
}

export default {
  render({ model, el }) {
    const root = keepKeys(h("div", { class: "hx hx-gallery", tabindex: -1 }));
    el.append(root);
    const conn = connection(model, root);
    /** @type {Map<number, string>} */
    const urls = new Map();
    let lastClicked = -1;
    let asking = false;

    const inputs = {
      name: h("input", { placeholder: "name contains", size: 12, "data-filter": "name" }),
      label: h("select", { "data-filter": "label" }),
      status: h("select", { "data-filter": "status" },
        ...["", "unlabeled", "to_confirm", "labeled"].map((s) => h("option", { value: s }, s || "any status"))),
      hard: h("select", { "data-filter": "hard" },
        h("option", { value: "" }, "hard or not"), h("option", { value: "true" }, "hard"),
        h("option", { value: "false" }, "not hard")),
      min_width: h("input", { type: "number", placeholder: "min width", style: "width:90px" }),
      min_height: h("input", { type: "number", placeholder: "min height", style: "width:90px" }),
      added_after: h("input", { type: "date", title: "uploaded after" }),
      added_before: h("input", { type: "date", title: "uploaded before" }),
    };
    const upload = h("input", { type: "file", multiple: true, accept: ".jpg,.jpeg,.png,.bmp", "data-role": "upload", title: "add images" });
    upload.addEventListener("change", async () => {
      const files = [...upload.files];
      if (!files.length) return;
      const buffers = await Promise.all(files.map((f) => f.arrayBuffer()));
      conn.send({ action: "upload", names: files.map((f) => f.name) }, buffers);
      upload.value = "";
    });
    const filterBar = h("div", { class: "bar" }, ...Object.values(inputs),
      h("button", { class: "primary", onclick: applyFilters }, "Filter"), h("label", {}, "Upload ", upload));
    const pager = h("div", { class: "bar" });
    const actions = h("div", { class: "bar" });
    const grid = h("div", { class: "grid" });
    root.append(filterBar, actions, grid, pager);
    messages(model, root);

    function applyFilters() {
      const f = {};
      for (const [k, input] of Object.entries(inputs)) {
        const v = input.value;
        if (v === "") continue;
        if (k === "hard") f[k] = v === "true";
        else if (k.startsWith("min_")) f[k] = Number(v);
        else f[k] = v;
      }
      conn.send({ action: "filter", filters: f });
    }

    function select(ids) {
      model.set("selected", ids);
      model.save_changes();
      conn.send({ action: "select", ids });
    }

    function renderActions() {
      const sel = model.get("selected");
      actions.replaceChildren();
      actions.append(h("span", { class: "muted" }, `${sel.length} selected`));
      if (!sel.length) return;
      if (asking) {
        actions.append(h("span", {}, `Delete ${sel.length} image(s) and their labels?`),
          h("button", { class: "danger", "data-action": "delete-yes",
            onclick: () => { asking = false; conn.send({ action: "delete", ids: sel, confirmed: true }); } }, "Yes, delete"),
          h("button", { onclick: () => { asking = false; renderActions(); } }, "No"));
        return;
      }
      actions.append(
        h("button", { "data-action": "mark-hard", onclick: () => conn.send({ action: "mark_hard", ids: sel, hard: true }) }, "Mark hard"),
        h("button", { "data-action": "mark-not-hard", onclick: () => conn.send({ action: "mark_hard", ids: sel, hard: false }) }, "Not hard"),
        h("button", { "data-action": "confirm", onclick: () => conn.send({ action: "confirm", ids: sel }) }, "Confirm"),
        h("button", { "data-action": "open", onclick: () => conn.send({ action: "open", ids: sel.slice(0, 1) }) }, "Open in annotator"),
        h("button", { class: "danger", "data-action": "delete", onclick: () => { asking = true; renderActions(); } }, "Delete…"),
        h("button", { onclick: () => select([]) }, "Clear"));
    }


    function renderPager() {
      const total = model.get("total"), size = model.get("page_size"), page = model.get("page");
      const pages = Math.max(1, Math.ceil(total / size));
      pager.replaceChildren(
        h("button", { "data-action": "prev-page", onclick: () => page > 0 && conn.send({ action: "page", page: page - 1 }) }, "‹ Prev"),
        h("span", { class: "muted", "data-role": "page" }, `page ${page + 1} of ${pages} · ${total} images`),
        h("button", { "data-action": "next-page", onclick: () => page + 1 < pages && conn.send({ action: "page", page: page + 1 }) }, "Next ›"));
    }

    function renderLabels() {
      const current = inputs.label.value;
      inputs.label.replaceChildren(h("option", { value: "" }, "any label"),
        ...model.get("labels").map((l) => h("option", { value: l }, l)));
      inputs.label.value = current;
    }

    function renderGrid() {
      const sel = new Set(model.get("selected"));
      const rows = model.get("rows");
      grid.replaceChildren(...rows.map((r, i) => {
        const img = h("img", { alt: r.name, "data-thumb": r.sample_id });
        if (urls.has(r.sample_id)) img.src = urls.get(r.sample_id);
        const card = h("div", { class: "card" + (sel.has(r.sample_id) ? " sel" : ""), "data-sample": r.sample_id },
          img, h("div", { class: "name", title: r.name }, r.name),
          h("div", {}, ...(r.labels.length ? r.labels.map((l) => h("span", { class: "chip" }, l)) : [h("span", { class: "muted" }, "no label")])),
          h("div", { class: "muted" }, `${r.status} · ${r.width}×${r.height}`),
          h("div", { class: "muted" }, r.added));
        if (r.hard) card.append(h("span", { class: "badge", title: `reasons ${r.reasons}` }, "hard"));
        card.addEventListener("click", (ev) => {
          let ids = new Set(model.get("selected"));
          if (ev.shiftKey && lastClicked >= 0) {
            const [a, b] = [Math.min(lastClicked, i), Math.max(lastClicked, i)];
            for (let k = a; k <= b; k++) ids.add(rows[k].sample_id);
          } else if (ids.has(r.sample_id)) ids.delete(r.sample_id);
          else ids.add(r.sample_id);
          lastClicked = i;
          select([...ids]);
        });
        return card;
      }));
    }

    model.on("msg:custom", (msg, buffers) => {
      if (msg.type !== "thumbs") return;
      msg.ids.forEach((id, k) => {
        if (urls.has(id)) URL.revokeObjectURL(urls.get(id));
        urls.set(id, blobUrl(buffers[k]));
      });
      for (const img of grid.querySelectorAll("img[data-thumb]")) {
        const id = Number(img.dataset.thumb);
        if (urls.has(id)) img.src = urls.get(id);
      }
    });
    model.on("change:rows", renderGrid);
    model.on("change:selected", () => { renderGrid(); renderActions(); });
    model.on("change:total", renderPager);
    model.on("change:page", renderPager);
    model.on("change:labels", renderLabels);
    renderLabels(); renderGrid(); renderActions(); renderPager();
    if (!model.get("rows").length || !urls.size) conn.send({ action: "page", page: model.get("page") });
    return () => { for (const u of urls.values()) URL.revokeObjectURL(u); };
  },
};
