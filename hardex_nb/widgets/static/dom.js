/** DOM helpers every hardex_nb widget shares (bundled into each widget's module). */

export const SVG = "http://www.w3.org/2000/svg";

/**
 * An HTML element: `on<event>` attributes become listeners; null, undefined and false
 * attributes and children are left out.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...(Node|string|null|undefined)} children
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/**
 * An SVG element with its attributes.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 */
export function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/**
 * Keys typed in a widget stay in it: JupyterLab and Notebook 7 (Lumino) skip their
 * shortcuts for events from inside an element marked `data-lm-suppress-shortcuts`, and the
 * root stops every keydown from bubbling on to the notebook (`a`, `m`, `d d`, `x`, ...).
 * @param {HTMLElement} root
 */
export function keepKeys(root) {
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.addEventListener("keydown", (ev) => ev.stopPropagation());
  // a click on a button (Next, Yes, a label) keeps the keyboard on the widget: the panel
  // redraws and the button itself may be gone
  root.addEventListener("click", (ev) => {
    if (ev.target instanceof Element && ev.target.closest("button"))
      root.focus({ preventScroll: true });
  });
  return root;
}

/**
 * Send messages to the kernel and notice when it no longer answers (restarted, stopped):
 * each message carries a sequence number the Python side acknowledges; one left
 * unanswered for `patience` ms marks the widget disconnected: a banner says so and every
 * later edit is refused instead of being lost silently. When every message is answered
 * after all (the kernel was busy running a cell), the widget is connected again. A
 * restarted kernel never answers. Every `poll` ms (0: never) it asks
 * the kernel to redraw if the dataset changed elsewhere.
 * @param {any} model
 * @param {HTMLElement} root
 * @param {number} [patience]
 */
export function connection(model, root, patience = 5000, poll = 2000) {
  const pending = new Map();
  let seq = 0,
    lost = false;
  const banner = h(
    "div",
    { class: "error", "data-role": "disconnected", hidden: true },
    "The kernel does not answer: it is busy running a cell, or was restarted or stopped. Edits are refused until it answers (this clears itself when a busy kernel is done); after a restart, run this cell again.",
  );
  root.prepend(banner);
  function lose() {
    if (lost) return;
    lost = true;
    banner.hidden = false;
    root.classList.add("hx-disconnected");
  }
  /** Every message answered: the kernel was only busy (a restarted one never answers). */
  function recover() {
    if (!lost || pending.size) return;
    lost = false;
    banner.hidden = true;
    root.classList.remove("hx-disconnected");
  }
  model.on("msg:custom", (msg) => {
    if (msg && typeof msg.ack === "number") {
      pending.delete(msg.ack);
      recover();
    }
  });
  let lastPoll = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const sent of pending.values()) if (now - sent > patience) lose();
    if (!root.isConnected) {
      clearInterval(timer);
      return;
    }
    // ask whether the dataset changed (another widget, a job, another process), while shown
    if (
      poll &&
      !lost &&
      now - lastPoll > poll &&
      document.visibilityState === "visible" &&
      !pending.size
    ) {
      lastPoll = now;
      api.send({ action: "poll" });
    }
  }, 500);
  const api = {
    send(msg, buffers) {
      if (lost) return false;
      seq += 1;
      pending.set(seq, Date.now());
      try {
        model.send({ ...msg, seq }, undefined, buffers);
      } catch (_e) {
        lose();
        return false;
      }
      return true;
    },
    get lost() {
      return lost;
    },
    close() {
      clearInterval(timer);
    },
  };
  return api;
}

/**
 * The widget's error and notice, shown over its top edge (the widget does not move): an
 * error stays until the next action succeeds or its × is clicked; a notice fades after
 * `keep` ms, unless it has details (`notice_details`: every file an upload skipped or
 * rejected, with why), which are listed under it and keep it until dismissed. Returns the
 * element (tests find it as `[data-role=message]`).
 * @param {any} model
 * @param {HTMLElement} root
 * @param {number} [keep]
 */
export function messages(model, root, keep = 6000) {
  const box = h("div", {
    class: "hx-message",
    "data-role": "message",
    role: "status",
    "aria-live": "polite",
  });
  root.classList.add("hx-has-message");
  root.prepend(box);
  let timer = null;
  function render() {
    clearTimeout(timer);
    const error = model.get("error"),
      notice = model.get("notice");
    const text = error || notice;
    if (!text) {
      box.replaceChildren();
      return;
    }
    const details = error ? [] : model.get("notice_details") || [];
    const close = h(
      "button",
      {
        class: "close",
        title: "dismiss",
        "data-action": "dismiss",
        onclick: () => box.replaceChildren(),
      },
      "×",
    );
    const body = h("div", { class: "text" }, h("span", {}, text));
    if (details.length)
      body.append(
        h(
          "ul",
          { class: "details", "data-role": "details" },
          ...details.map((line) => h("li", {}, line)),
        ),
      );
    box.replaceChildren(
      h(
        "div",
        { class: error ? "error" : "notice", "data-role": error ? "error" : "notice" },
        body,
        close,
      ),
    );
    if (!error && !details.length) timer = setTimeout(() => box.replaceChildren(), keep);
  }
  model.on("change:error", render);
  model.on("change:notice", render);
  model.on("change:notice_details", render);
  render();
  return box;
}

/**
 * One number format for every report: whole numbers with thousands separators, fractions
 * (rates, precision, AP, shares) with 3 decimals, a dash for none. A fraction of exactly
 * 1 or 0 is still a fraction: say so with `fraction` (else it would read as a count).
 * @param {any} v
 * @param {boolean} [fraction]
 */
export function fmt(v, fraction = false) {
  if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))) return "—";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) && !fraction ? v.toLocaleString("en-US") : v.toFixed(3);
}

/**
 * The Train button of the Annotator and the Gallery, and what the training does: the epochs
 * as they pass (with Cancel), then the new run's average detection rate and its interval.
 * @param {any} model
 * @param {(msg: object) => void} send
 */
export function trainBar(model, send) {
  const t = model.get("training") ?? { state: "idle" };
  const version = t.version ? `${t.version} ` : "";
  if (t.state === "running")
    return h(
      "span",
      { class: "train", "data-role": "train", "data-state": "running" },
      h(
        "span",
        { class: "muted" },
        `${version}training: epoch ${t.epoch ?? 0}/${t.epochs ?? "?"}` +
          (t.loss === undefined ? "" : ` · loss ${t.loss.toFixed(3)}`),
      ),
      h(
        "button",
        { "data-action": "cancel-training", onclick: () => send({ action: "cancel_training" }) },
        "Cancel",
      ),
    );
  const said = {
    done: () =>
      `${version}trained: avg detection rate ${fmt(t.rate, true)}` +
      (t.low === null || t.low === undefined
        ? ""
        : ` (95%: ${fmt(t.low, true)}–${fmt(t.high, true)}, ${t.images} val images)`),
    cancelled: () => `${version}cancelled`,
    failed: () => `training failed: ${t.message}`,
  }[t.state];
  return h(
    "span",
    { class: "train", "data-role": "train", "data-state": t.state },
    h(
      "button",
      {
        "data-action": "train",
        title: "Train a model with the options of the last run, in the background",
        onclick: () => send({ action: "train" }),
      },
      "Train",
    ),
    said ? h("span", { class: t.state === "failed" ? "error-text" : "muted" }, said()) : "",
  );
}
