/** The Annotator's keyboard: one table drives both the key handler and the help shown. */
import { h } from "../dom.js";

/**
 * [keys (KeyboardEvent.key values), shown as, what it does, action name, review only].
 * The action names are the Annotator's handlers (annotator.js, `actions`).
 */
export const KEYS = [
  [["ArrowRight", "n"], "→ / n", "next", "next"],
  [["ArrowLeft", "p"], "← / p", "previous", "prev"],
  [["1", "2", "3", "4", "5", "6", "7", "8", "9"], "1–9", "label", "label"],
  [["Delete", "Backspace"], "Del", "delete", "delete"],
  [["l"], "l", "labels on/off", "toggleLabels"],
  [["v"], "v", "annotations on/off", "toggleAll"],
  [["o", "f"], "o / f", "1:1 / fit", "zoom"],
  [["b", "g", "i", "u", "h"], "b g i u h", "tools", "tool"],
  [["[", "]"], "[ ]", "turn box ∓5°", "turn"],
  [["Enter"], "Enter", "close polygon", "closePolygon"],
  [["Escape"], "Esc", "cancel", "cancel"],
  [["c"], "c", "confirm", "confirm", true],
  [["k"], "k", "skip", "skip", true],
  [["x"], "x", "delete image", "deleteImage", true],
];
/** Shown in the help, handled outside the table (modifier keys, the mouse). */
const EXTRA_HELP = [["Ctrl+Z", "undo"], ["Ctrl+wheel", "zoom"]];

/** The table's action for `key`, or null. */
export function actionFor(key, review) {
  const row = KEYS.find(([keys, , , , reviewOnly]) => keys.includes(key) && (review || !reviewOnly));
  return row ? row[3] : null;
}

/** The help panel, rendered from the table. */
export function keyHelp(review) {
  const rows = KEYS.filter(([, , , , reviewOnly]) => review || !reviewOnly).map(([, shown, what]) => [shown, what]);
  return h("div", { class: "keys" }, ...[...rows, ...EXTRA_HELP].map(([k, what]) => h("div", {}, h("kbd", {}, k), ` ${what}`)));
}
