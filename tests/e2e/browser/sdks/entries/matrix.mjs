// matrix-js-sdk, whole, as one ES module for the browser (its package's "browser" entry).
export * from "matrix-js-sdk";
