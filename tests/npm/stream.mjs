// The official npm `openai` SDK, unchanged, streaming from pixelpipe (tests/npm/test_openai_npm.py).
// node stream.mjs <base url> <input png path>: one streamed generation, then one streamed edit,
// each with partial_images: 2. Prints one JSON line per event (its type, partial_image_index,
// output_format, and the sha256 of its image), and per stream the generation id that pixelpipe
// names in the x-pixelpipe-generation-ids header. Any error: printed, exit 1.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import OpenAI, { toFile } from "openai";

const [base, inputPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120000 });

async function follow(name, request) {
  const { data: stream, response } = await request.withResponse();
  console.log(JSON.stringify({ stream: name, generation: response.headers.get("x-pixelpipe-generation-ids") }));
  for await (const event of stream) {
    const image = Buffer.from(event.b64_json, "base64");
    console.log(JSON.stringify({
      stream: name,
      type: event.type,
      index: event.partial_image_index ?? null,
      format: event.output_format,
      size: event.size,
      sha256: createHash("sha256").update(image).digest("hex"),
    }));
  }
}

try {
  await follow("generate", client.images.generate({
    model: "preview",
    prompt: "a lighthouse at dusk, from node",
    size: "64x64",
    output_format: "png",
    stream: true,
    partial_images: 2,
  }));
  const image = await toFile(readFileSync(inputPath), "teal.png", { type: "image/png" });
  await follow("edit", client.images.edit({
    image,
    prompt: "the same picture at dusk, from node",
    size: "64x64",
    output_format: "png",
    stream: true,
    partial_images: 2,
  }));
} catch (err) {
  console.error(`${err.constructor.name}: ${err.message}`);
  process.exit(1);
}
