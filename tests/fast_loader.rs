//! The streaming loader (`Dataset::load`, `Dataset::load_for_model`) against the reference
//! (`read_table` + `Dataset::from_table` / `for_model`): the same dataset, or the same error
//! word for word, on every input the data-pipeline tests use, on seeded random files full of
//! quotes, CRLF, blank lines and bad cells, and with blocks so small that every record
//! boundary (and quoted newline) is a block boundary somewhere.

use std::io::Write;
use std::path::{Path, PathBuf};

use wgtrain::data::{DataSpec, Dataset, LoadOptions, Schema, read_table};
use wgtrain::rng::Rng;
use wgtrain::spec::Task;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write temp file");
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn outcome(r: wgtrain::Result<Dataset>) -> Result<Dataset, String> {
    r.map_err(|e| e.to_string())
}

const BLOCKS: [usize; 4] = [1, 7, 64, 0];

/// `Dataset::load` equals the reference for `text`, at every block size; returns the result.
fn same_training(
    dir: &Path,
    name: &str,
    text: &[u8],
    targets: &[&str],
    drop: &[&str],
    task: Option<Task>,
) -> Result<Dataset, String> {
    let p = write(dir, name, text);
    let (targets, drop) = (strings(targets), strings(drop));
    let spec = DataSpec {
        targets: &targets,
        drop: &drop,
        task,
        window: None,
    };
    let want = outcome(read_table(&p).and_then(|t| Dataset::from_table(&t, &spec)));
    for block_bytes in BLOCKS {
        let opts = LoadOptions {
            progress: false,
            block_bytes,
        };
        let got = outcome(Dataset::load(&p, &spec, &opts));
        if got != want {
            let shown = String::from_utf8_lossy(&text[..text.len().min(400)]).into_owned();
            panic!(
                "block {block_bytes}: streaming loader differs on {name} (targets {targets:?}, \
                 task {task:?}):\n  want {want:?}\n  got  {got:?}\ntext: {shown:?}"
            );
        }
    }
    want
}

#[test]
fn same_as_reference_on_the_pipeline_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&[u8], &[&str], Option<Task>)] = &[
        (
            b"\xef\xbb\xbfa,b,label\r\n1.5,\"2,5\",\"x, y\"\r\n-3.25,4,z\r\n",
            &["label"],
            None,
        ),
        (b"a,b,y\n\n1,2,3\n  \n\n4,5,6\n\n", &["y"], None),
        (
            b"a,y1,b,y2\n10,1.5,7,-2\n20,2.5,9,-4\n30,3.5,11,-6\n",
            &["y2", "y1"],
            None,
        ),
        (b"a,y\n1,3\n2,1\n3,3\n4,2\n", &["y"], None),
        (
            b"a,y\n1,3\n2,1\n3,3\n4,2\n",
            &["y"],
            Some(Task::Classification),
        ),
        (b"a,y\n1,cat\n2,dog\n", &["y"], Some(Task::Regression)),
        (b"a,y\n1,10\n2,2\n3,-1.5\n4,2\n5,10\n", &["y"], None),
        (b"a,y\n1,b2\n2,b10\n3,a\n4,B\n", &["y"], None),
        (b"a,y\n1,10\n2,2\n3,x\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,abc,6\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,5,6\n,5,6\n", &["y"], None),
        (b"a,b,y\n1,NaN,3\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,-inf,6\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,1e39,6\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,5,nan\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,5,inf\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,5,\n6,7,8\n", &["y"], None),
        (b"a,b,y\n1,2,\"\"\n4,5,cat\n", &["y"], None),
        (b"a,b,y\n1,2,cat\n4,5,cat\n", &["y"], None),
        (b"a,b,y\r\n1,2,3\r\n4,5x,6\r\n", &["y"], None),
        (b"a, b ,y\n1,\"2\", 3\n4,\"x\" , 6\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,5,6\n7,8\n", &["y"], None),
        (b"a,b,y\n1,2,3,4\n", &["y"], None),
        (b"a,b,y\n1,2,3\n4,\xff\xfe,6\n", &["y"], None),
        (b"a,b,y\r\n\r\n1,2,3\r\n\r\n4,5,\xe9t\xe9\r\n", &["y"], None),
        (b"a,\xff,y\n1,2,3\n", &["y"], None),
        (b"a,,y\n1,2,3\n", &["y"], None),
        (b"", &["y"], None),
        (b"\n\n  \n", &["y"], None),
        (b"a,b,y\n", &["y"], None),
        (b"a,b,y\n\n \n", &["y"], None),
        (b"a,y,z\n1,cat,2\n2,dog,3\n", &["y", "z"], None),
        (
            b"a,y,z\n1,1,2\n2,2,3\n",
            &["y", "z"],
            Some(Task::Classification),
        ),
        (b"a,b\n1,2\n3,4", &["b"], None),
        (b"a,b\r1,2\r3,4\r", &["b"], None),
        (b"x,y,x\n1,2,3\n4,5,6\n", &["y"], None),
        (b"a,y\n\"1\n2\",3\n4,5\n", &["y"], None),
        (b"a,y\n\"1\",\"x\ny\"\n2,\"z\"\n", &["y"], None),
    ];
    for (i, (text, targets, task)) in cases.iter().enumerate() {
        let _ = same_training(d, &format!("case{i}.csv"), text, targets, &[], *task);
    }
    // Gzip, and a file that only claims to be gzip.
    let text = b"u,v,w\n0.5,1.25,2\n3,4,5\n";
    let ds = same_training(d, "g.csv.gz", &gzip(text), &["w"], &[], None).unwrap();
    assert_eq!(ds.x, [0.5, 1.25, 3.0, 4.0]);
    let e = same_training(
        d,
        "bad.csv.gz",
        b"\x1f\x8b\x08\x00garbage",
        &["w"],
        &[],
        None,
    );
    assert!(e.unwrap_err().contains("decompress"));
    // Column choices.
    let text = b"a,b,y,z\n1.5,2,3,4\n4.5,5,6,7\n";
    for (targets, drop) in [
        (&["w"][..], &[][..]),
        (&["y"], &["q"]),
        (&["Y"], &[]),
        (&["y"], &["y"]),
        (&[], &[]),
        (&["y", "z"], &["a", "b"]),
        (&["y", "y"], &[]),
        (&["y", "z"], &["a"]),
    ] {
        let _ = same_training(d, "c.csv", text, targets, drop, None);
    }
}

/// A random cell: mostly numbers of many shapes, sometimes quoted (if `quotes`) or padded,
/// rarely bad.
fn cell(rng: &mut Rng, bad_rate: usize, quotes: bool) -> String {
    let v = match rng.below(12) {
        0 => format!("{}", rng.below(300)),
        1 => format!("-{}.{}", rng.below(1000), rng.below(1000)),
        2 => format!("{:e}", (rng.uniform() - 0.5) * 1e6),
        3 => format!("{:.3}e-{}", rng.uniform(), rng.below(40)),
        4 => format!("{}", rng.normal()),
        5 => format!("0.{:018}", rng.next_u64() % 1_000_000_000_000_000_000),
        6 => format!("{}", rng.next_u64()),
        7 => format!("+{}.", rng.below(99)),
        8 => format!("{:.7}", rng.normal() * 0.1),
        9 => format!(".{}", rng.below(100)),
        _ => format!("{:.4}", rng.normal() * 100.0),
    };
    let v = if bad_rate > 0 && rng.below(bad_rate) == 0 {
        ["", "abc", "NaN", "inf", "1e999", "1,5", "x\ny"][rng.below(7)].to_string()
    } else {
        v
    };
    match rng.below(10) {
        0 if quotes => format!("\"{}\"", v.replace('"', "\"\"")),
        1 => format!(" {v}\t"),
        _ if quotes && v.contains([',', '\n']) => format!("\"{v}\""),
        _ => v,
    }
}

/// A random file; without `quotes` no cell is quoted, so that whole blocks take the loader's
/// path for plain text (cells with a comma or a line end then split their rows).
fn random_csv(
    rng: &mut Rng,
    rows: usize,
    cols: usize,
    (bad_rate, label, quotes): (usize, bool, bool),
) -> Vec<u8> {
    let mut s = String::new();
    let names: Vec<String> = (0..cols).map(|c| format!("c{c}")).collect();
    s.push_str(&names.join(","));
    s.push_str(if label { ",y\n" } else { "\n" });
    let ends = ["\n", "\r\n", "\n\n", "\n   \n"];
    for _ in 0..rows {
        let row: Vec<String> = (0..cols).map(|_| cell(rng, bad_rate, quotes)).collect();
        s.push_str(&row.join(","));
        if label {
            let classes = if quotes {
                ["setosa", "\"ver,si\"", "vir\"\"g", "4"]
            } else {
                ["setosa", " versi ", "vir g", "4"]
            };
            s.push(',');
            s.push_str(classes[rng.below(classes.len())]);
        }
        s.push_str(ends[rng.below(8).min(3) * usize::from(rng.below(4) == 0)]);
    }
    s.into_bytes()
}

#[test]
fn same_as_reference_on_random_files() {
    random_files(2024, true);
}

/// Blocks without a quote take the plain-text path (`src/data/rows.rs`), which must give the
/// reference's rows, numbers and errors exactly.
#[test]
fn same_as_reference_on_random_unquoted_files() {
    random_files(77, false);
}

fn random_files(seed: u64, quotes: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed);
    let mut ok = 0;
    for case in 0..120 {
        let rows = 1 + rng.below(60);
        let cols = 1 + rng.below(6);
        let bad_rate = [0, 0, 40, 200][rng.below(4)];
        let label = rng.below(3) == 0;
        let text = random_csv(&mut rng, rows, cols, (bad_rate, label, quotes));
        let target = if label {
            "y".to_string()
        } else {
            format!("c{}", cols - 1)
        };
        if !label && cols == 1 {
            continue;
        }
        let task = [None, Some(Task::Regression), Some(Task::Classification)][rng.below(3)];
        let r = same_training(dir.path(), "r.csv", &text, &[&target], &[], task);
        ok += usize::from(r.is_ok());
        if case % 10 == 0 {
            let _ = same_training(dir.path(), "r.csv.gz", &gzip(&text), &[&target], &[], task);
        }
    }
    assert!(ok > 30, "only {ok} random files loaded cleanly");
}

#[test]
fn errors_far_into_a_multi_block_file_keep_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(5);
    let rows = 40_000;
    let mut text = random_csv(&mut rng, rows, 8, (0, false, true));
    // Break one cell near the end: the reference and the loader must agree on where.
    let at = text.len() - 1000;
    let comma = at + text[at..].iter().position(|&b| b == b',').unwrap();
    text.splice(comma + 1..comma + 1, b"zz".iter().copied());
    let p = write(dir.path(), "big.csv", &text);
    let targets = strings(&["c7"]);
    let spec = DataSpec {
        targets: &targets,
        drop: &[],
        task: None,
        window: None,
    };
    let want = read_table(&p)
        .and_then(|t| Dataset::from_table(&t, &spec))
        .unwrap_err()
        .to_string();
    for block_bytes in [4096, 1 << 16, 0] {
        let opts = LoadOptions {
            progress: false,
            block_bytes,
        };
        let got = Dataset::load(&p, &spec, &opts).unwrap_err().to_string();
        assert_eq!(got, want, "block {block_bytes}");
    }
    assert!(want.contains("is not a number"), "{want}");
}

#[test]
fn for_model_same_as_reference() {
    let dir = tempfile::tempdir().unwrap();
    let f = strings(&["b", "a"]);
    let classes = strings(&["setosa", "versicolor", "virginica"]);
    let y = strings(&["kind"]);
    let cases: &[(&[u8], &[String], Task, bool)] = &[
        (
            b"a,kind,b,extra\n1.5,versicolor,2.5,q\n3.5,setosa,4.5,r\n",
            &y,
            Task::Classification,
            true,
        ),
        (
            b"a,kind,b\n1.5,versicolor,2.5\n3.5,virginica\n",
            &y,
            Task::Classification,
            true,
        ),
        (
            b"a,kind,b\n1.5,versicolor,2.5\n3.5,virginia,4.5\n",
            &y,
            Task::Classification,
            true,
        ),
        (b"a,kind,b\n1.5,,2.5\n", &y, Task::Classification, true),
        (b"a,b\n1.5,2.5\n3.5,x\n", &y, Task::Classification, false),
        (b"a,b\n1.5,2.5\n", &y, Task::Classification, true),
        (b"a,c\n1.5,2.5\n", &y, Task::Classification, false),
        (b"a,kind,b\n1.5,2,2.5\n3,,4\n", &y, Task::Regression, true),
        (
            b"a,kind,b\n1.5,2,2.5\n3,4e1,4\n",
            &y,
            Task::Regression,
            true,
        ),
        (
            b"a,kind,b\n1.5,2,2.5\n3,4e1,4\n",
            &[],
            Task::Regression,
            true,
        ),
    ];
    for (i, (text, targets, task, need)) in cases.iter().enumerate() {
        let p = write(dir.path(), &format!("m{i}.csv"), text);
        let classes: &[String] = if *task == Task::Classification {
            &classes
        } else {
            &[]
        };
        let want = read_table(&p);
        let cols = Schema {
            features: f.clone(),
            targets: targets.to_vec(),
            task: *task,
            classes: classes.to_vec(),
            window: None,
        };
        let want = want
            .and_then(|t| Dataset::for_schema(&t, &cols, *need))
            .map_err(|e| e.to_string());
        for block_bytes in BLOCKS {
            let opts = LoadOptions {
                progress: false,
                block_bytes,
            };
            let got = Dataset::load_for_schema(&p, &cols, *need, &opts).map_err(|e| e.to_string());
            assert_eq!(got, want, "case {i}, block {block_bytes}");
        }
    }
}

#[test]
fn split_in_place_equals_two_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9);
    let text = random_csv(&mut rng, 500, 4, (0, true, true));
    let p = write(dir.path(), "s.csv", &text);
    let targets = strings(&["y"]);
    let spec = DataSpec {
        targets: &targets,
        drop: &[],
        task: None,
        window: None,
    };
    let ds = Dataset::load(&p, &spec, &LoadOptions::default()).unwrap();
    assert_eq!(ds.schema.task, Task::Classification);
    for seed in 0..4 {
        let (tr, va) = wgtrain::data::split_indices(&ds, 0.3, seed, false).unwrap();
        let want = (ds.subset(&tr), ds.subset(&va));
        assert_eq!(ds.clone().split(&tr, &va), want);
    }
    // Not ascending: still the subsets, in the order given.
    let (keep, take) = ([3, 1, 2], [0, 4]);
    let want = (ds.subset(&keep), ds.subset(&take));
    assert_eq!(ds.split(&keep, &take), want);
}

/// A target of a few whole numbers is read as classes in one pass (the labels are kept while
/// the task is unknown): the same dataset as the reference, and as `--task classification`,
/// also when the labels are written differently (`1` and `1.0` are two labels in both).
#[test]
fn whole_number_targets_become_classes_in_one_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(9);
    let mut text = String::from("a,b,y\n");
    for _ in 0..300 {
        let y = ["0", "1", "2", " 1 ", "2.0"][rng.below(5)];
        text.push_str(&format!("{:.3},{},{y}\n", rng.normal(), rng.below(50)));
    }
    let inferred =
        same_training(dir.path(), "w.csv", text.as_bytes(), &["y"], &[], None).expect("loads");
    assert_eq!(inferred.schema.task, Task::Classification);
    assert_eq!(inferred.schema.classes, strings(&["0", "1", "2", "2.0"]));
    let told = same_training(
        dir.path(),
        "w.csv",
        text.as_bytes(),
        &["y"],
        &[],
        Some(Task::Classification),
    )
    .expect("loads");
    assert_eq!(inferred, told);
}
