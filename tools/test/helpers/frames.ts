interface FrameLike {
  refId?: string;
  fields: { name: string }[];
}

/** `frames` with field `name` of frame `refId` replaced by `edit(field, frame)`; all else unchanged. */
export function withField<F extends FrameLike>(
  frames: F[],
  refId: string,
  name: string,
  edit: (field: F['fields'][number], frame: F) => F['fields'][number],
): F[] {
  return frames.map((f) =>
    f.refId !== refId ? f : { ...f, fields: f.fields.map((fl) => (fl.name !== name ? fl : edit(fl, f))) },
  );
}
