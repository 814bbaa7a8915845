/**
 * A value made the first time it is asked for. For modules that are costly to load and that a
 * command may not need: a warm `kiln build` (every package unpacked already) loads no decoder.
 */
export function lazy<T>(load: () => T): () => T {
  let value: T | undefined;
  let loaded = false;
  return () => {
    if (!loaded) {
      value = load();
      loaded = true;
    }
    return value as T;
  };
}
