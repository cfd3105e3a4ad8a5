// stream-chat, as one ES module for the browser.
export * from "stream-chat";
