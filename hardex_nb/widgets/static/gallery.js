/** hardex_nb Gallery: paged thumbnails, filters, multi-select and batch actions. */
import { COLORS } from "./annotator/shapes.js";
import { connection, h, keepKeys, messages, s, trainBar } from "./dom.js";

/** "1 image", "2 images". */
const images = (n) => `${n} image${n === 1 ? "" : "s"}`;

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
      status: h(
        "select",
        { "data-filter": "status" },
        ...["", "unlabeled", "to_confirm", "labeled"].map((s) =>
          h("option", { value: s }, s || "any status"),
        ),
      ),
      hard: h(
        "select",
        { "data-filter": "hard" },
        h("option", { value: "" }, "hard or not"),
        h("option", { value: "true" }, "hard"),
        h("option", { value: "false" }, "not hard"),
      ),
      min_width: h("input", {
        type: "number",
        min: 0,
        placeholder: "min width",
        style: "width:calc(10ch + 40px)",
        "data-filter": "min_width",
      }),
      max_width: h("input", {
        type: "number",
        min: 0,
        placeholder: "max width",
        style: "width:calc(10ch + 40px)",
        "data-filter": "max_width",
      }),
      min_height: h("input", {
        type: "number",
        min: 0,
        placeholder: "min height",
        style: "width:calc(10ch + 40px)",
        "data-filter": "min_height",
      }),
      max_height: h("input", {
        type: "number",
        min: 0,
        placeholder: "max height",
        style: "width:calc(10ch + 40px)",
        "data-filter": "max_height",
      }),
      added_after: h("input", {
        type: "datetime-local",
        title: "added at or after (UTC)",
        "data-filter": "added_after",
      }),
      added_before: h("input", {
        type: "datetime-local",
        title: "added at or before (UTC)",
        "data-filter": "added_before",
      }),
    };
    /** Filters typed but not yet applied: a reply from the kernel does not overwrite them. */
    const typed = new Set();
    for (const [k, input] of Object.entries(inputs)) {
      input.addEventListener("input", () => typed.add(k));
      // Enter in any filter applies them all
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") applyFilters();
      });
    }
    const sortBy = h(
      "select",
      { "data-role": "sort", title: "sort by" },
      ...[
        ["added", "time added"],
        ["name", "name"],
        ["hard_score", "hard score"],
        ["width", "width"],
      ].map(([v, text]) => h("option", { value: v }, `sort: ${text}`)),
    );
    const order = h("button", { "data-role": "order", title: "ascending / descending" });
    const sendSort = (ascending) => conn.send({ action: "sort", by: sortBy.value, ascending });
    sortBy.addEventListener("change", () =>
      sendSort(sortBy.value === "hard_score" ? false : model.get("ascending")),
    );
    order.addEventListener("click", () => sendSort(!model.get("ascending")));
    const boxesToggle = h("input", { type: "checkbox", "data-role": "show-boxes", checked: true });
    boxesToggle.addEventListener("change", renderGrid);
    const upload = h("input", {
      type: "file",
      multiple: true,
      accept: ".jpg,.jpeg,.png,.bmp",
      "data-role": "upload",
      title: "add images",
    });
    upload.addEventListener("change", async () => {
      const files = [...upload.files];
      if (!files.length) return;
      const buffers = await Promise.all(files.map((f) => f.arrayBuffer()));
      conn.send({ action: "upload", names: files.map((f) => f.name) }, buffers);
      upload.value = "";
    });
    const filterBar = h(
      "div",
      { class: "bar" },
      ...Object.values(inputs),
      h("button", { class: "primary", "data-action": "filter", onclick: applyFilters }, "Filter"),
      h("button", { "data-action": "clear-filters", onclick: clearFilters }, "Clear filters"),
      sortBy,
      order,
      h("label", {}, boxesToggle, " boxes"),
      h("label", {}, "Upload ", upload),
    );
    const pager = h("div", { class: "bar" });
    const actions = h("div", { class: "bar" });
    const grid = h("div", { class: "grid" });
    root.append(filterBar, actions, grid, pager);
    messages(model, root);

    /** The filters typed; the kernel checks them (a range no image can fall in gets its
     * message there). Only what never reaches it is said here: a number the input cannot read. */
    function applyFilters() {
      const f = {};
      for (const [k, input] of Object.entries(inputs)) {
        const v = input.value.trim();
        if (v === "") {
          if (input.validity?.badInput) return say(`${k.replace("_", " ")}: not a number`);
          continue;
        }
        if (k === "hard") f[k] = v === "true";
        else if (k.startsWith("min_") || k.startsWith("max_")) f[k] = Number(v);
        else f[k] = v;
      }
      model.set("error", ""); // one said here, not by the kernel
      typed.clear();
      conn.send({ action: "filter", filters: f });
    }
    function say(error) {
      model.set("notice", "");
      model.set("error", error);
    }
    function clearFilters() {
      for (const input of Object.values(inputs)) input.value = "";
      typed.clear();
      conn.send({ action: "filter", filters: {} });
    }
    /** The inputs show the filters in force (set from Python, cleared, or applied), marked
     * `data-active`; one typed since the last Filter keeps what was typed. */
    function renderFilters() {
      const f = model.get("filters");
      for (const [k, input] of Object.entries(inputs)) {
        const v = f[k];
        input.toggleAttribute("data-active", v !== undefined && v !== null);
        if (typed.has(k)) continue;
        input.value =
          v === undefined || v === null
            ? ""
            : k === "hard"
              ? String(v)
              : k.startsWith("added_")
                ? String(v).length === 10
                  ? `${v}T00:00`
                  : String(v).slice(0, 16)
                : String(v);
      }
      sortBy.value = model.get("sort_by");
      order.textContent = model.get("ascending") ? "↑ ascending" : "↓ descending";
    }

    function select(ids) {
      model.set("selected", ids);
      model.save_changes();
      conn.send({ action: "select", ids });
    }

    function renderActions() {
      const sel = model.get("selected");
      actions.replaceChildren();
      const rows = model.get("rows"),
        total = model.get("total");
      actions.append(
        h("span", { class: "muted", "data-role": "selected-count" }, `${sel.length} selected`),
        h(
          "button",
          {
            "data-action": "select-page",
            disabled: !rows.length,
            onclick: () => select([...new Set([...sel, ...rows.map((r) => r.sample_id)])]),
          },
          `Select page (${rows.length})`,
        ),
        h(
          "button",
          {
            "data-action": "select-all",
            disabled: !total,
            onclick: () => conn.send({ action: "select_all" }),
          },
          `Select all ${total} matching`,
        ),
      );
      actions.append(trainBar(model, conn.send));
      const undoable = model.get("undoable");
      if (undoable)
        actions.append(
          h(
            "button",
            {
              "data-action": "undo",
              title: "add the images of the last delete back",
              onclick: () => conn.send({ action: "undo" }),
            },
            `Undo delete of ${undoable}`,
          ),
        );
      if (!sel.length) return;
      if (asking) {
        actions.append(
          h("span", {}, `Delete ${images(sel.length)} and their labels?`),
          h(
            "button",
            {
              class: "danger",
              "data-action": "delete-yes",
              onclick: () => {
                asking = false;
                conn.send({ action: "delete", ids: sel, confirmed: true });
              },
            },
            "Yes, delete",
          ),
          h(
            "button",
            {
              onclick: () => {
                asking = false;
                renderActions();
              },
            },
            "No",
          ),
        );
        return;
      }
      if (model.get("task") === "classification") {
        // the selected images all get one label
        const relabel = h(
          "select",
          { "data-action": "set-label", title: "give the selected images one label" },
          h("option", { value: "" }, `Set label of ${images(sel.length)}…`),
          ...model.get("labels").map((l) => h("option", { value: l }, l)),
        );
        relabel.addEventListener("change", () => {
          if (relabel.value) conn.send({ action: "set_label", ids: sel, label: relabel.value });
        });
        actions.append(relabel);
      }
      if (model.get("task") === "multilabel") {
        // the selected images get a label, or lose it, each keeping its others
        for (const give of [true, false]) {
          const pick = h(
            "select",
            {
              "data-action": give ? "give-label" : "take-label",
              title: give
                ? "give the selected images a label (they keep their others)"
                : "take a label from the selected images",
            },
            h(
              "option",
              { value: "" },
              give
                ? `Give ${images(sel.length)} a label…`
                : `Take a label from ${images(sel.length)}…`,
            ),
            ...model.get("labels").map((l) => h("option", { value: l }, l)),
          );
          pick.addEventListener("change", () => {
            if (pick.value)
              conn.send({ action: "change_labels", ids: sel, label: pick.value, give });
          });
          actions.append(pick);
        }
      }
      actions.append(
        h(
          "button",
          {
            "data-action": "mark-hard",
            onclick: () => conn.send({ action: "mark_hard", ids: sel, hard: true }),
          },
          "Mark hard",
        ),
        h(
          "button",
          {
            "data-action": "mark-not-hard",
            onclick: () => conn.send({ action: "mark_hard", ids: sel, hard: false }),
          },
          "Not hard",
        ),
        h(
          "button",
          { "data-action": "confirm", onclick: () => conn.send({ action: "confirm", ids: sel }) },
          "Confirm",
        ),
        h(
          "button",
          {
            "data-action": "open",
            onclick: () => conn.send({ action: "open", ids: sel.slice(0, 1) }),
          },
          "Open in annotator",
        ),
        h(
          "button",
          {
            class: "danger",
            "data-action": "delete",
            onclick: () => {
              asking = true;
              renderActions();
            },
          },
          "Delete…",
        ),
        h("button", { onclick: () => select([]) }, "Clear"),
      );
    }

    function renderPager() {
      const total = model.get("total"),
        size = model.get("page_size"),
        page = model.get("page");
      const pages = Math.max(1, Math.ceil(total / size));
      // a page to go to: typed, then Enter (or leaving the field)
      const jump = h("input", {
        type: "number",
        min: 1,
        max: pages,
        value: page + 1,
        style: "width:64px",
        "data-role": "page-jump",
        title: "go to page (Enter)",
      });
      const go = () => {
        const n = Number(jump.value);
        if (Number.isInteger(n) && n >= 1 && n <= pages && n !== page + 1)
          conn.send({ action: "page", page: n - 1 });
        else jump.value = page + 1;
      };
      jump.addEventListener("keydown", (e) => {
        e.stopPropagation();
        if (e.key === "Enter") go();
      });
      jump.addEventListener("change", go);
      const sizes = [...new Set([...model.get("page_sizes"), size])].sort((a, b) => a - b);
      const sizeMenu = h(
        "select",
        { "data-role": "page-size", title: "images a page" },
        ...sizes.map((n) =>
          h("option", { value: n, ...(n === size ? { selected: "" } : {}) }, `${n} a page`),
        ),
      );
      sizeMenu.addEventListener("change", () =>
        conn.send({ action: "page_size", size: Number(sizeMenu.value) }),
      );
      pager.replaceChildren(
        h(
          "button",
          {
            "data-action": "prev-page",
            onclick: () => page > 0 && conn.send({ action: "page", page: page - 1 }),
          },
          "‹ Prev",
        ),
        h("span", { class: "muted" }, "page"),
        jump,
        h("span", { class: "muted", "data-role": "page" }, `of ${pages} · ${images(total)}`),
        h(
          "button",
          {
            "data-action": "next-page",
            onclick: () => page + 1 < pages && conn.send({ action: "page", page: page + 1 }),
          },
          "Next ›",
        ),
        sizeMenu,
      );
    }

    function renderLabels() {
      const current = inputs.label.value;
      inputs.label.replaceChildren(
        h("option", { value: "" }, "any label"),
        ...model.get("labels").map((l) => h("option", { value: l }, l)),
      );
      inputs.label.value = current;
    }

    /** The thumbnail's boxes, drawn as `object-fit: contain` shows the image. */
    function thumbBoxes(r) {
      const svg = s("svg", {
        viewBox: `0 0 ${r.width} ${r.height}`,
        preserveAspectRatio: "xMidYMid meet",
        class: "thumb-boxes",
        "data-boxes": r.sample_id,
      });
      const w = Math.max(r.width, r.height) / 110; // about 1.5 screen px
      const labels = model.get("labels");
      for (const [x0, y0, x1, y1, label] of r.boxes) {
        // each label in its Annotator colour
        const rect = s("rect", {
          x: x0,
          y: y0,
          width: x1 - x0,
          height: y1 - y0,
          fill: "none",
          stroke: COLORS[Math.max(0, labels.indexOf(label)) % COLORS.length],
          "data-label": label,
          "stroke-width": 1.5 * w,
        });
        rect.append(Object.assign(s("title"), { textContent: label }));
        svg.append(rect);
      }
      return svg;
    }

    function renderGrid() {
      const sel = new Set(model.get("selected"));
      const rows = model.get("rows");
      if (!rows.length && model.get("empty_reason")) {
        grid.replaceChildren(
          h(
            "div",
            { class: "empty", "data-role": "empty" },
            h("p", {}, model.get("empty_reason")),
            Object.keys(model.get("filters")).length
              ? h(
                  "button",
                  { "data-action": "clear-filters", onclick: clearFilters },
                  "Clear filters",
                )
              : null,
          ),
        );
        return;
      }
      grid.replaceChildren(
        ...rows.map((r, i) => {
          const img = h("img", { alt: r.name, "data-thumb": r.sample_id });
          if (urls.has(r.sample_id)) img.src = urls.get(r.sample_id);
          const thumb = h(
            "div",
            { class: "thumb" },
            img,
            boxesToggle.checked && r.boxes.length ? thumbBoxes(r) : null,
          );
          const hover = [
            r.name,
            `${r.width}×${r.height} · ${r.status}`,
            r.labels.join(", "),
            r.hard_score !== null ? `hard score ${r.hard_score.toFixed(2)}` : null,
            `added ${r.added} UTC`,
          ]
            .filter(Boolean)
            .join("\n");
          const card = h(
            "div",
            {
              class: `card${sel.has(r.sample_id) ? " sel" : ""}`,
              "data-sample": r.sample_id,
              title: hover,
            },
            thumb,
            h("div", { class: "name", title: r.name }, r.name),
            h(
              "div",
              {},
              ...(r.labels.length
                ? r.labels.map((l) => h("span", { class: "chip" }, l))
                : [h("span", { class: "muted" }, "no label")]),
            ),
            h("div", { class: "muted" }, `${r.status} · ${r.width}×${r.height}`),
            h("div", { class: "muted" }, r.added),
          );
          if (r.hard)
            card.append(h("span", { class: "badge", title: r.why || "marked hard" }, "hard"));
          card.addEventListener("click", (ev) => {
            const ids = new Set(model.get("selected"));
            if (ev.shiftKey && lastClicked >= 0) {
              const [a, b] = [Math.min(lastClicked, i), Math.max(lastClicked, i)];
              for (let k = a; k <= b; k++) ids.add(rows[k].sample_id);
            } else if (ids.has(r.sample_id)) ids.delete(r.sample_id);
            else ids.add(r.sample_id);
            lastClicked = i;
            select([...ids]);
          });
          return card;
        }),
      );
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
    model.on("change:rows", () => {
      renderGrid();
      renderActions();
    });
    model.on("change:empty_reason", renderGrid);
    model.on("change:filters", renderFilters);
    model.on("change:sort_by", renderFilters);
    model.on("change:ascending", renderFilters);
    model.on("change:selected", () => {
      renderGrid();
      renderActions();
    });
    model.on("change:undoable", renderActions);
    model.on("change:training", renderActions);
    model.on("change:total", renderPager);
    model.on("change:page", renderPager);
    model.on("change:labels", renderLabels);
    renderLabels();
    renderFilters();
    renderGrid();
    renderActions();
    renderPager();
    if (!model.get("rows").length || !urls.size)
      conn.send({ action: "page", page: model.get("page") });
    return () => {
      for (const u of urls.values()) URL.revokeObjectURL(u);
    };
  },
};
