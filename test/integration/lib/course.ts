// The course-shaped lottery's data: the course's own files when ../shared/data exists, else
// generated files of the same shape (sizes and winners per agency).

import { existsSync } from "node:fs";
import { join } from "node:path";
import { COURSE_DATA } from "../../../kit/programs.js";
import { generateDataset } from "../../../tools/gen-data.js";

export const COURSE_SIZES = [26936, 25518, 16014, 9238, 991];
export const COURSE_WINNERS = [2, 3, 3, 2, 0];

/** The course's files when ../shared/data exists; otherwise generated files of the same shape. */
export async function courseFiles(dir: string): Promise<{ files: string[]; source: string }> {
  if (existsSync(join(COURSE_DATA, "agency-1.csv"))) {
    return {
      files: [1, 2, 3, 4, 5].map((i) => join(COURSE_DATA, `agency-${i}.csv`)),
      source: "course",
    };
  }
  await generateDataset({
    out: dir,
    agencies: 5,
    bets: COURSE_SIZES,
    winners: COURSE_WINNERS,
    seed: 7,
    crlf: true,
  });
  return { files: [1, 2, 3, 4, 5].map((i) => join(dir, `agency-${i}.csv`)), source: "generated" };
}
