// Case 9 — a plain `git clone`, as a newcomer and the course's tests meet the project:
// nothing prepared by the harness. `make docker-compose-up` alone runs the 5-agency
// lottery to the winners 2, 3, 3, 2, 0 (the files it needs are filled in by
// scripts/agency-data.sh), and the course's exercise-6 steps (`git clean -fd`, write
// .data/agency-1.csv into the existing folder, `docker build`, `docker compose up -d`)
// work without the Makefile. The repository carries the course's files as
// .data/dataset.zip, like the course skeleton; the clones live in a temporary folder, away
// from ../shared, so the archive is the source unless a test takes it away.

import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import {
  betsReceived,
  COMPOSE_FILE,
  check,
  composeDown,
  csvRecords,
  dockerSuite,
  exitCode,
  followClients,
  ROOT,
  run,
  writeClientConfig,
  writeServerConfig,
} from "./lib/harness.mjs";
import { followLottery } from "./lib/lottery.mjs";

const COURSE_ROWS = [26936, 25518, 16014, 9238, 991];
const COURSE_WINNERS = [2, 3, 3, 2, 0];
const COURSE_TOTAL = 78697;
// Absolute: make runs in the clone, not here.
const COURSE_DATA = resolve(process.env.SHARED_DIR ?? join(ROOT, "../shared"), "data");
const haveCourseData = existsSync(join(COURSE_DATA, "agency-1.csv"));

// What a newcomer's shell has: none of this project's or CI's data hints. (Emptied, not
// deleted: run() lays these over process.env.)
const plainEnv = () =>
  Object.fromEntries(
    ["SHARED_DIR", "COURSE_DATA", "CLIENT_MODE", "AGENCY_START_DELAY", "SERVER_REPLICAS"].map(
      (k) => [k, ""],
    ),
  );

let base;
/** A fresh `git clone` of this repository's HEAD, one level below a temporary folder. */
function freshClone(name) {
  const dir = join(base, name);
  check("git", ["clone", "--quiet", ROOT, dir]);
  return dir;
}

function dataFiles(clone) {
  return readdirSync(join(clone, ".data"))
    .filter((f) => f.endsWith(".csv"))
    .sort();
}

/** The clone's .data/ holds five files of the course's sizes, owned by the user. */
function assertCourseSized(clone) {
  const rows = dataFiles(clone).map(
    (f) => csvRecords(readFileSync(join(clone, ".data", f), "utf8")).length,
  );
  assert.deepEqual(rows, COURSE_ROWS, "the files have the course's sizes");
  const mine = process.getuid?.();
  for (const f of dataFiles(clone)) {
    assert.equal(statSync(join(clone, ".data", f)).uid, mine, `${f} belongs to the user`);
  }
}

function make(clone, args, env = {}) {
  return run("make", ["-C", clone, ...args], { env: { ...plainEnv(), ...env }, timeout: 900_000 });
}

dockerSuite(
  "case 9: a plain git clone",
  () => {
    test("the clone has .data/ with the course's archive and no agency files; generar-compose.sh says what is missing", () => {
      const clone = freshClone("layout");
      assert.ok(statSync(join(clone, ".data")).isDirectory(), ".data/ is in the repository");
      assert.ok(statSync(join(clone, ".data/dataset.zip")).isFile(), "with the course's archive");
      assert.deepEqual(dataFiles(clone), [], "no unzipped agency files are committed");
      const r = run("sh", ["generar-compose.sh", COMPOSE_FILE, "2"], {
        cwd: clone,
        env: plainEnv(),
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(
        r.stderr,
        /2 of the agencies' files are not in \.data\/ yet \(first: \.data\/agency-1\.csv\)/,
      );
      const yaml = readFileSync(join(clone, COMPOSE_FILE), "utf8");
      assert.ok(!yaml.includes("agency-1.csv"), "no bind mount points at a data file");
    });

    test("DATA=check: make docker-compose-up names the missing file and starts nothing", () => {
      const clone = freshClone("check");
      const r = make(clone, ["docker-compose-up", "DATA=check"]);
      assert.notEqual(r.status, 0, "make fails");
      assert.match(
        r.stderr,
        /missing \.data\/agency-1\.csv \(agency 1 of docker-compose-dev\.yaml\)/,
      );
      assert.match(r.stderr, /make agency-data/);
      assert.equal(exitCode("server"), null, "no server container was created");
      assert.notEqual(
        run("docker", ["container", "inspect", "server"]).status,
        0,
        "no server container exists",
      );
    });

    test("the sources: .data/dataset.zip, then a folder of course files", () => {
      const clone = freshClone("sources");
      check("sh", ["generar-compose.sh", COMPOSE_FILE, "3"], { cwd: clone, env: plainEnv() });
      // A zip laid out like the course skeleton's (files in a subfolder), holding agency 1 only.
      const rows1 = "Ana,Fornerón,00000001,1990-01-31,7574\r\n";
      check("python3", [
        "-c",
        "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('dataset/agency-1.csv', sys.argv[2])",
        join(clone, ".data/dataset.zip"),
        rows1,
      ]);
      const folder = join(base, "course-files");
      mkdirSync(folder, { recursive: true });
      for (const i of [1, 2]) {
        check("sh", [
          "-c",
          `printf 'B,C,0000000${i},2000-01-01,${i}\\n' > ${folder}/agency-${i}.csv`,
        ]);
      }
      // Agency 3 is in neither: the check step (no Docker involved) must name it.
      const r = run("sh", ["scripts/agency-data.sh", "prepare", COMPOSE_FILE], {
        cwd: clone,
        env: { ...plainEnv(), COURSE_DATA: folder, CLIENT_IMAGE: "no-such-image:never" },
      });
      assert.notEqual(r.status, 0, "agency 3 cannot be made without the image");
      assert.equal(
        readFileSync(join(clone, ".data/agency-1.csv"), "utf8"),
        rows1,
        "agency 1 from the zip",
      );
      assert.equal(
        readFileSync(join(clone, ".data/agency-2.csv"), "utf8"),
        "B,C,00000002,2000-01-01,2\n",
        "agency 2 from the course folder",
      );
      assert.match(r.stderr, /missing \.data\/agency-3\.csv/);
      assert.deepEqual(dataFiles(clone), ["agency-1.csv", "agency-2.csv"]);
    });

    test("make docker-compose-up on a plain clone: 5 agencies, winners 2, 3, 3, 2, 0", async () => {
      const clone = freshClone("lottery");
      const up = make(clone, ["docker-compose-up"]);
      try {
        assert.equal(up.status, 0, `make docker-compose-up failed:\n${up.stdout}\n${up.stderr}`);
        assert.match(up.stderr, /agency-5\.csv: from \.data\/dataset\.zip/);
        if (haveCourseData) {
          for (let i = 1; i <= 5; i++) {
            const f = `agency-${i}.csv`;
            assert.ok(
              readFileSync(join(clone, ".data", f)).equals(readFileSync(join(COURSE_DATA, f))),
              `${f} is the course's file`,
            );
          }
        }
        await followLottery("case9-fresh-clone-make", COURSE_WINNERS, COURSE_TOTAL, {
          cwd: clone,
          timeout: 600_000,
        });
        assertCourseSized(clone);
      } finally {
        composeDown(10, clone);
      }
    });

    test("without the archive, make docker-compose-up takes the course's files from a folder", {
      skip: !haveCourseData && `no course files in ${COURSE_DATA}`,
    }, async () => {
      const clone = freshClone("course");
      rmSync(join(clone, ".data/dataset.zip"));
      const up = make(clone, ["docker-compose-up"], { COURSE_DATA });
      try {
        assert.equal(up.status, 0, `make docker-compose-up failed:\n${up.stdout}\n${up.stderr}`);
        assert.match(up.stderr, /agency-1\.csv: the course's file from/);
        for (let i = 1; i <= 5; i++) {
          assert.ok(
            readFileSync(join(clone, `.data/agency-${i}.csv`)).equals(
              readFileSync(join(COURSE_DATA, `agency-${i}.csv`)),
            ),
            `agency-${i}.csv is the course's file`,
          );
        }
        await followLottery("case9-fresh-clone-course", COURSE_WINNERS, COURSE_TOTAL, {
          cwd: clone,
          timeout: 600_000,
        });
      } finally {
        composeDown(10, clone);
      }
    });

    test("with neither the archive nor the course's files: synthetic files shaped like them", async () => {
      const clone = freshClone("synthetic");
      rmSync(join(clone, ".data/dataset.zip"));
      const up = make(clone, ["docker-compose-up"]);
      try {
        assert.equal(up.status, 0, `make docker-compose-up failed:\n${up.stdout}\n${up.stderr}`);
        assert.match(up.stderr, /agency-5\.csv: synthetic, shaped like the course's data/);
        await followLottery("case9-fresh-clone-synthetic", COURSE_WINNERS, COURSE_TOTAL, {
          cwd: clone,
          timeout: 600_000,
        });
        assertCourseSized(clone);
      } finally {
        composeDown(10, clone);
      }
    });

    test("the course's exercise-6 steps, without the Makefile", async () => {
      const clone = freshClone("ej6");
      check("git", ["clean", "-fd"], { cwd: clone });
      check("sh", ["generar-compose.sh", COMPOSE_FILE, "1"], { cwd: clone, env: plainEnv() });
      writeServerConfig({ loggingLevel: "DEBUG", root: clone });
      writeClientConfig({ loopAmount: 500, loopPeriod: "150ms", maxAmount: 10, root: clone });
      // The course's generate_agency_file: makedirs of .data's *parent*, then open(..., "w+").
      check("python3", [
        "-c",
        [
          "import os, sys",
          "repo = sys.argv[1]",
          "os.makedirs(os.path.dirname(f'{repo}/.data'), exist_ok=True)",
          "with open(f'{repo}/.data/agency-1.csv', 'w+') as file:",
          "  for i in range(64): file.write(f'A,B,{str(i).zfill(8)},2000-01-01,{i}\\n')",
        ].join("\n"),
        clone,
      ]);
      for (const image of ["server", "client"]) {
        check("docker", ["build", "-f", `./${image}/Dockerfile`, "-t", `${image}:latest`, "."], {
          cwd: clone,
          timeout: 900_000,
        });
      }
      const up = run("docker", ["compose", "-f", COMPOSE_FILE, "up", "-d"], { cwd: clone });
      try {
        assert.equal(up.status, 0, `docker compose up -d failed:\n${up.stderr}`);
        const { messages } = await followClients(
          "case9-course-ej6",
          ["client1"],
          (m) => betsReceived(m) >= 64,
          { cwd: clone },
        );
        assert.equal(betsReceived(messages), 64, "apuesta_recibida adds up to the 64 rows");
        assert.equal(exitCode("client1"), 0, "client1 exits 0");
      } finally {
        composeDown(10, clone);
      }
    });
  },
  {
    setUp: () => {
      base = mkdtempSync(join(tmpdir(), "tp0-fresh-"));
    },
    tearDown: () => rmSync(base, { recursive: true, force: true }),
  },
);
