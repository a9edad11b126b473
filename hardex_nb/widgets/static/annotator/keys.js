/** The Annotator's keyboard: one table drives both the key handler and the help shown. */
import { h } from "../dom.js";

/**
 * [keys (KeyboardEvent.key values), shown as, what it does, action name, where]: `where`
 * is "review" (the Review queue only), "detection" (box tools) or absent (everywhere).
 * The action names are the Annotator's handlers (annotator.js, `actions`).
 */
export const KEYS = [
  [["ArrowRight", "n"], "→ / n", "next", "next"],
  [["ArrowLeft", "p"], "← / p", "previous", "prev"],
  [
    ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
    "1–9",
    "label (the selection; classification: then next; multilabel: give or take one)",
    "label",
  ],
  [["/"], "/", "find a label (type, Enter)", "findLabel"],
  [["Delete", "Backspace"], "Del", "delete", "delete", "detection"],
  [["l"], "l", "labels on/off", "toggleLabels", "detection"],
  [["v"], "v", "annotations on/off", "toggleAll", "detection"],
  [["m"], "m", "test predictions on/off", "togglePredicted", "detection"],
  [["o", "f"], "o / f", "original size (1:1) / fit", "zoom"],
  [["w"], "w", "full width on/off", "wide"],
  [["b", "g", "i", "u", "h", "a"], "b g i u h a", "tools (a: point to label)", "tool", "detection"],
  [["[", "]"], "[ ]", "turn box ∓5°", "turn", "detection"],
  [["Enter"], "Enter", "close polygon / keep the proposed box", "closePolygon", "detection"],
  [["Escape"], "Esc", "cancel", "cancel"],
  [["c"], "c", "confirm", "confirm", "review"],
  [["k"], "k", "skip", "skip", "review"],
  [["x"], "x", "delete image", "deleteImage", "review"],
];
/** Shown in the help, handled outside the table (modifier keys, the mouse). */
export const EXTRA_HELP = [
  ["Ctrl+Z", "undo"],
  ["Ctrl+Shift+Z / Ctrl+Y", "redo"],
];
export const EXTRA_DETECTION_HELP = [
  ["drag a shape", "move it"],
  ["Shift+drag", "draw over a shape"],
  ["drag a midpoint", "add a vertex"],
  ["Alt+click a vertex", "remove it"],
  ["Ctrl+C / V", "copy / paste objects"],
  ["Space+drag", "pan"],
  ["Ctrl+wheel", "zoom at the pointer"],
  ["dbl-click", "close polygon"],
];

const applies = (where, review, detection) =>
  !where || (where === "review" && review) || (where === "detection" && detection);

/** The table's action for `key` in this widget (Review or not, detection or not), or null. */
export function actionFor(key, review, detection) {
  const row = KEYS.find(
    ([keys, , , , where]) => keys.includes(key) && applies(where, review, detection),
  );
  return row ? row[3] : null;
}

/** What Ctrl (or ⌘) with `key` does: "undo", "redo" (Ctrl+Shift+Z or Ctrl+Y), "copy" or
 * "paste" (objects: detection only), or null (the browser keeps the key). */
export function chordFor(key, shift, detection) {
  const k = key.toLowerCase();
  const what = k === "z" ? (shift ? "redo" : "undo") : { y: "redo", c: "copy", v: "paste" }[k];
  if (!what || ((what === "copy" || what === "paste") && !detection)) return null;
  return what;
}

/** The help panel, rendered from the table: only the keys that work here. */
export function keyHelp(review, detection) {
  const rows = KEYS.filter(([, , , , where]) => applies(where, review, detection)).map(
    ([, shown, what]) => [shown, what],
  );
  const extra = detection ? [...EXTRA_HELP, ...EXTRA_DETECTION_HELP] : EXTRA_HELP;
  return h(
    "div",
    { class: "keys", "data-role": "keys" },
    ...[...rows, ...extra].map(([k, what]) => h("div", {}, h("kbd", {}, k), ` ${what}`)),
  );
}
