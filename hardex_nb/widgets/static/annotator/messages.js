/** What the Annotator and Python say to each other: the synced traits it reads and the
 * messages it sends (`conn.send`), each handled by `Annotator._on_<action>` in
 * widgets/annotator.py. Types only: this module exports nothing at run time. */

/**
 * One object of the image shown (the `annotations` trait). Coordinates are image pixels;
 * `points` is one ring [[x, y], ...] or, for an object in pieces, a list of rings.
 * @typedef {object} Annotation
 * @property {number} ann_id
 * @property {"box" | "polygon" | "text" | "ignore"} kind
 * @property {string | null} label
 * @property {number} x0
 * @property {number} y0
 * @property {number} x1
 * @property {number} y1
 * @property {number | null} [angle] degrees, clockwise on screen, about the box's centre
 * @property {Point[] | Point[][] | null} [points]
 * @property {number | null} score a model's confidence; null for a person's object
 * @property {string} origin "human" or the model version that proposed it
 * @property {string | null} [text] OCR text
 * @property {"false_positive" | "missed" | null} [hard_type]
 * @property {boolean} [difficult] VOC's flags: evaluation neither misses nor counts it
 * @property {boolean} [truncated]
 * @property {boolean} [occluded]
 */

/**
 * The image shown (the `sample` trait).
 * @typedef {object} Sample
 * @property {number} sample_id
 * @property {string} name
 * @property {number} width
 * @property {number} height
 * @property {string} status
 * @property {string | null} label a classification's class
 * @property {boolean} hard
 * @property {string | null} hard_reasons reason codes joined by "-", e.g. "1-100"
 * @property {number | null} hard_score
 */

/** @typedef {[number, number]} Point an image point (x, y) */
/** @typedef {{x0: number, y0: number, x1: number, y1: number}} Box */

/**
 * A message to Python. The edits:
 * - `{action: "add_box", kind: "box" | "ignore", label, x0, y0, x1, y1}`
 * - `{action: "add_polygon", kind: "polygon" | "ignore", label, points}`
 * - `{action: "update", ann_id, ...fields}`: any of x0..y1, angle, points, label, text,
 *   difficult, truncated, occluded
 * - `{action: "delete", ann_id}`, `{action: "clear", negative?}`, `{action: "paste", annotations}`
 * - `{action: "set_label", label}` (classification), `{action: "set_hard", hard}`,
 *   `{action: "set_hard_type", ann_id, hard_type}`
 * - the label set: `add_label`, `rename_label`, `delete_label`
 * Moving and asking: `next`, `prev`, `undo`, `crop` (x0..y1 of the region in view);
 * Review adds `confirm`, `skip`, `delete_sample` (with `confirmed: true`).
 * @typedef {{action: string} & Record<string, unknown>} Message
 */

/**
 * What a finished drag asks for: a message to send, or a click at an image point
 * (a press that hardly moved selects what lies under it).
 * @typedef {{send: Message} | {select: Point} | null} Outcome
 */

export {};
