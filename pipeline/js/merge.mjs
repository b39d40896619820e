// The JSON merge Substrate uses to apply a genesis preset patch onto the default config:
// objects merge key by key (recursively), anything else in the patch replaces the value.
export const mergeJson = (base, patch) => {
  const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(base) || !isObject(patch)) return patch;
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    merged[key] = key in merged ? mergeJson(merged[key], value) : value;
  }
  return merged;
};
