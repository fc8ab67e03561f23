//! The data pipeline from files on disk: reading, column selection, task inference, splits,
//! windows, the normalizer, and an error that names file, line and column for every bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use wgtrain::data::{DataSpec, Dataset, Normalizer, Schema, every_nth, read_table, split_indices};
use wgtrain::spec::Task;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write temp file");
    p
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Read `text` as `name` and build the training dataset.
fn load(
    name: &str,
    text: &str,
    targets: &[&str],
    drop: &[&str],
    task: Option<Task>,
) -> wgtrain::Result<Dataset> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), name, text.as_bytes());
    let t = read_table(&p)?;
    let (targets, drop) = (strings(targets), strings(drop));
    Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &drop,
            task,
            window: None,
        },
    )
}

/// The error message of `r`, which must be an error.
/// The schema a model would carry, for `Dataset::for_schema`.
fn schema(
    features: &[String],
    targets: &[String],
    task: Task,
    classes: &[String],
    window: Option<usize>,
) -> Schema {
    Schema {
        features: features.to_vec(),
        targets: targets.to_vec(),
        task,
        classes: classes.to_vec(),
        window,
    }
}

fn err<T: std::fmt::Debug>(r: wgtrain::Result<T>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "expected {p:?} in the message:\n  {msg}");
    }
}

// ---------------------------------------------------------------- reading

#[test]
fn bom_crlf_and_quoted_fields() {
    let text = "\u{feff}a,b,label\r\n1.5,\"2,5\",\"x, y\"\r\n-3.25, 4 ,z\r\n\r\n";
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "bom.csv", text.as_bytes());
    let t = read_table(&p).unwrap();
    assert_eq!(t.header, ["a", "b", "label"]);
    assert_eq!(t.lines, [2, 3]);
    assert_eq!(&t.records[0][1], "2,5");
    assert_eq!(&t.records[0][2], "x, y");
    assert_eq!(&t.records[1][1], "4");

    let ds = load(
        "q.csv",
        "a,b,label\r\n1.5,\"2.5\",\"x, y\"\r\n-3.25, 4 ,z\r\n",
        &["label"],
        &[],
        None,
    )
    .unwrap();
    assert_eq!(ds.schema.task, Task::Classification);
    assert_eq!(ds.schema.classes, ["x, y", "z"]);
    assert_eq!(ds.x, [1.5, 2.5, -3.25, 4.0]);
    assert_eq!(ds.y, [0.0, 1.0]);
}

#[test]
fn gzip_is_detected_by_magic_bytes() {
    let text = b"u,v,w\n0.5,7,-2\n1.25,8,-3\n";
    let dir = tempfile::tempdir().unwrap();
    for name in ["g.csv.gz", "g_without_extension.csv"] {
        let p = write(dir.path(), name, &gzip(text));
        let t = read_table(&p).unwrap();
        assert_eq!(t.header, ["u", "v", "w"], "{name}");
        assert_eq!(t.records.len(), 2);
        assert_eq!(&t.records[1][0], "1.25");
        assert_eq!(t.lines, [2, 3]);
    }
}

#[test]
fn blank_lines_keep_file_line_numbers() {
    let ds = load("b.csv", "a,y\n1.5,2\n\n\n3.5,4\n\n", &["y"], &[], None).unwrap();
    assert_eq!(ds.lines, [2, 5]);
    assert_eq!(ds.rows, 2);
}

// ---------------------------------------------------------------- columns and task

#[test]
fn multi_target_regression() {
    let ds = load(
        "m.csv",
        "y1,a,y2,b\n1.5,10,-2,7\n2.5,20,-4,9\n3.5,30,-6,11\n",
        &["y2", "y1"],
        &[],
        None,
    )
    .unwrap();
    assert_eq!(ds.schema.task, Task::Regression);
    assert_eq!(ds.schema.features, ["a", "b"]);
    assert_eq!(ds.schema.targets, ["y2", "y1"]);
    assert_eq!(ds.x, [10.0, 7.0, 20.0, 9.0, 30.0, 11.0]);
    assert_eq!(ds.y, [-2.0, 1.5, -4.0, 2.5, -6.0, 3.5]);
    assert_eq!((ds.n_features(), ds.n_outputs(), ds.rows), (2, 2, 3));
}

#[test]
fn drop_removes_columns() {
    let ds = load(
        "d.csv",
        "id,a,b,y\n7,1.5,2.5,3\n8,4.5,5.5,6\n",
        &["y"],
        &["id"],
        None,
    )
    .unwrap();
    assert_eq!(ds.schema.features, ["a", "b"]);
    assert_eq!(ds.x, [1.5, 2.5, 4.5, 5.5]);
}

#[test]
fn task_inference_and_override() {
    let text = "a,y\n0.5,3\n1.5,1\n2.5,3\n3.5,2\n";
    let reg = load("r.csv", text, &["y"], &[], None).unwrap();
    assert_eq!(reg.schema.task, Task::Regression);
    assert_eq!(reg.y, [3.0, 1.0, 3.0, 2.0]);
    assert!(reg.schema.classes.is_empty());

    let cls = load("r.csv", text, &["y"], &[], Some(Task::Classification)).unwrap();
    assert_eq!(cls.schema.task, Task::Classification);
    assert_eq!(cls.schema.classes, ["1", "2", "3"]);
    assert_eq!(cls.y, [2.0, 0.0, 2.0, 1.0]);
    assert_eq!(cls.n_outputs(), 3);

    let inferred = load("s.csv", "a,y\n0.5,cat\n1.5,dog\n", &["y"], &[], None).unwrap();
    assert_eq!(inferred.schema.task, Task::Classification);
    // Text labels with --task regression: the label is not a number.
    let e = err(load(
        "s.csv",
        "a,y\n0.5,cat\n1.5,dog\n",
        &["y"],
        &[],
        Some(Task::Regression),
    ));
    assert_has(&e, &["s.csv:2:2", "column 'y': 'cat' is not a number"]);
}

#[test]
fn class_order_numeric_and_string() {
    let num = load(
        "n.csv",
        "a,y\n1,10\n2,2\n3,-1.5\n4,2\n5,10\n",
        &["y"],
        &[],
        Some(Task::Classification),
    )
    .unwrap();
    assert_eq!(num.schema.classes, ["-1.5", "2", "10"]);
    assert_eq!(num.y, [2.0, 1.0, 0.0, 1.0, 2.0]);

    let text = load("t.csv", "a,y\n1,b10\n2,b2\n3,a\n4,B\n", &["y"], &[], None).unwrap();
    assert_eq!(text.schema.classes, ["B", "a", "b10", "b2"]);
    assert_eq!(text.y, [2.0, 3.0, 1.0, 0.0]);

    // One non-numeric label makes them all strings.
    let mixed = load("x.csv", "a,y\n1,10\n2,2\n3,x\n", &["y"], &[], None).unwrap();
    assert_eq!(mixed.schema.classes, ["10", "2", "x"]);
}

// ---------------------------------------------------------------- splits

fn classes_dataset(counts: &[usize]) -> Dataset {
    let mut y = Vec::new();
    for (c, &n) in counts.iter().enumerate() {
        y.extend(std::iter::repeat_n(c as f32, n));
    }
    // Interleave the classes so that a split by position would not be stratified.
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by_key(|&i| (i * 7919) % y.len());
    let y: Vec<f32> = order.iter().map(|&i| y[i]).collect();
    let rows = y.len();
    Dataset {
        schema: Schema {
            features: strings(&["f"]),
            targets: strings(&["c"]),
            task: Task::Classification,
            classes: (0..counts.len()).map(|c| format!("k{c}")).collect(),
            window: None,
        },
        x: (0..rows).map(|i| i as f32 * 0.5 + 0.25).collect(),
        y,
        rows,
        lines: (2..rows as u64 + 2).collect(),
    }
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let ds = classes_dataset(&[50, 30, 20]);
    let (train, val) = split_indices(&ds, 0.2, 42, false).unwrap();
    assert_eq!((train.len(), val.len()), (80, 20));
    let per_class = |idx: &[usize]| {
        let mut n = [0usize; 3];
        for &i in idx {
            n[ds.y[i] as usize] += 1;
        }
        n
    };
    assert_eq!(per_class(&val), [10, 6, 4]);
    assert_eq!(per_class(&train), [40, 24, 16]);
    assert!(train.windows(2).all(|w| w[0] < w[1]) && val.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<usize> = train.iter().chain(&val).copied().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());

    // Same seed, same split; another seed, another split.
    assert_eq!(
        split_indices(&ds, 0.2, 42, false).unwrap(),
        (train.clone(), val.clone())
    );
    assert_ne!(split_indices(&ds, 0.2, 43, false).unwrap().1, val);

    // Rounding per class: 0.25 · 30 = 7.5 → 8, 0.25 · 50 = 12.5 → 13, 0.25 · 20 = 5.
    let (_, v) = split_indices(&ds, 0.25, 1, false).unwrap();
    assert_eq!(per_class(&v), [13, 8, 5]);
}

#[test]
fn regression_split_is_seeded_and_chronological_takes_the_end() {
    let ds = load(
        "r.csv",
        &(0..20).fold("a,y\n".to_string(), |s, i| {
            s + &format!("{}.5,{}\n", i, i * 3)
        }),
        &["y"],
        &[],
        None,
    )
    .unwrap();
    let (train, val) = split_indices(&ds, 0.25, 7, false).unwrap();
    assert_eq!((train.len(), val.len()), (15, 5));
    assert_eq!(split_indices(&ds, 0.25, 7, false).unwrap().1, val);
    assert_ne!(split_indices(&ds, 0.25, 8, false).unwrap().1, val);
    assert_ne!(val, [15, 16, 17, 18, 19]);

    let (train, val) = split_indices(&ds, 0.25, 7, true).unwrap();
    assert_eq!(val, [15, 16, 17, 18, 19]);
    assert_eq!(train, (0..15).collect::<Vec<_>>());

    let (train, val) = split_indices(&ds, 0.0, 7, false).unwrap();
    assert_eq!((train.len(), val.len()), (20, 0));
}

#[test]
fn split_rejects_bad_fractions_and_too_few_rows() {
    let ds = classes_dataset(&[3, 2]);
    for f in [-0.1, 1.0, 1.5, f64::NAN] {
        assert_has(
            &err(split_indices(&ds, f, 1, false)),
            &["--val-split", "[0, 1)"],
        );
    }
    let e = err(split_indices(&ds, 0.05, 1, false));
    assert_has(&e, &["--val-split", "5 rows", "no validation rows"]);
    let one = classes_dataset(&[1]);
    let e = err(split_indices(&one, 0.5, 1, true));
    assert_has(&e, &["--val-split", "1 rows", "no training rows"]);
}

#[test]
fn every_tenth_row_is_dev() {
    let (train, dev) = every_nth(2700, 10);
    assert_eq!(dev.len(), 270);
    assert_eq!(train.len(), 2430);
    assert_eq!(&dev[..3], [0, 10, 20]);
    assert_eq!(&train[..10], [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
    assert_eq!(*dev.last().unwrap(), 2690);
}

// ---------------------------------------------------------------- normalizer

#[test]
fn normalizer_fit_apply_invert_and_constant_column() {
    // Columns: 1, 2, 3, 4 (mean 2.5, std √1.25); constant 7; 10, 20, 30, 40.
    let x = vec![
        1.0, 7.0, 10.0, 2.0, 7.0, 20.0, 3.0, 7.0, 30.0, 4.0, 7.0, 40.0,
    ];
    let n = Normalizer::fit(&x, 4, 3);
    assert_eq!(n.mean, [2.5, 7.0, 25.0]);
    assert_eq!(n.std, [1.25f32.sqrt(), 1.0, 125f32.sqrt()]);
    let mut z = x.clone();
    n.apply(&mut z);
    let s = 1.25f32.sqrt();
    assert_eq!(&z[..3], [-1.5 / s, 0.0, -15.0 / 125f32.sqrt()]);
    assert_eq!(z[1], 0.0);
    assert_eq!(z[4], 0.0);
    n.invert(&mut z);
    for (a, b) in z.iter().zip(&x) {
        assert!((a - b).abs() <= 1e-5 * b.abs(), "{a} vs {b}");
    }
    let id = Normalizer::identity(3);
    let mut w = x.clone();
    id.apply(&mut w);
    assert_eq!(w, x);
}

// ---------------------------------------------------------------- windows

fn window_table(dir: &Path) -> PathBuf {
    write(dir, "series.csv", b"date,views,temp\n2021-01-01,100,1.5\n2021-01-02,120,2.5\n2021-01-03,90,3.5\n2021-01-04,130,4.5\n2021-01-05,110,5.5\n")
}

#[test]
fn window_features_values_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let t = read_table(&window_table(dir.path())).unwrap();
    let (targets, drop) = (strings(&["views"]), strings(&["date"]));
    let spec = DataSpec {
        targets: &targets,
        drop: &drop,
        task: None,
        window: Some(2),
    };
    let ds = Dataset::from_table(&t, &spec).unwrap();
    assert_eq!(ds.schema.features, ["views[t-2]", "views[t-1]", "temp"]);
    assert_eq!(ds.rows, 3);
    assert_eq!(
        ds.x,
        [100.0, 120.0, 3.5, 120.0, 90.0, 4.5, 90.0, 130.0, 5.5]
    );
    assert_eq!(ds.y, [90.0, 130.0, 110.0]);
    assert_eq!(ds.lines, [4, 5, 6]);
    assert_eq!(ds.schema.task, Task::Regression);

    // Predict rebuilds the same windows from the target column; extra columns are ignored.
    let (again, has) = Dataset::for_schema(
        &t,
        &schema(
            &ds.schema.features,
            &targets,
            Task::Regression,
            &[],
            Some(2),
        ),
        false,
    )
    .unwrap();
    assert!(has);
    assert_eq!(again, ds);

    // The date column is text: without --drop it is named with its place.
    let spec = DataSpec {
        targets: &targets,
        drop: &[],
        task: None,
        window: Some(2),
    };
    assert_has(
        &err(Dataset::from_table(&t, &spec)),
        &[
            "series.csv:4:1",
            "column 'date': '2021-01-03' is not a number",
            "--drop date",
        ],
    );

    for n in [0, 5, 9] {
        let spec = DataSpec {
            targets: &targets,
            drop: &drop,
            task: None,
            window: Some(n),
        };
        assert_has(&err(Dataset::from_table(&t, &spec)), &["--window"]);
    }
    let spec = DataSpec {
        targets: &targets,
        drop: &drop,
        task: None,
        window: Some(4),
    };
    assert_eq!(Dataset::from_table(&t, &spec).unwrap().rows, 1);

    let two = strings(&["views", "temp"]);
    let spec = DataSpec {
        targets: &two,
        drop: &drop,
        task: None,
        window: Some(2),
    };
    assert_has(
        &err(Dataset::from_table(&t, &spec)),
        &["--window", "exactly one target"],
    );
}

#[test]
fn window_for_model_needs_the_target_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "nov.csv",
        b"date,temp\n2021-01-01,1.5\n2021-01-02,2.5\n2021-01-03,3.5\n",
    );
    let t = read_table(&p).unwrap();
    let features = strings(&["views[t-2]", "views[t-1]", "temp"]);
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &features,
            &strings(&["views"]),
            Task::Regression,
            &[],
            Some(2),
        ),
        false,
    ));
    assert_has(&e, &["nov.csv:1:", "missing the model's columns: views"]);
}

// ---------------------------------------------------------------- for_model

#[test]
fn for_model_picks_columns_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "p.csv",
        b"extra,b,species,a\nq,2.5,virginica,1.5\nr,4.5,setosa,3.5\n",
    );
    let t = read_table(&p).unwrap();
    let classes = strings(&["setosa", "versicolor", "virginica"]);
    let (ds, has) = Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a", "b"]),
            &strings(&["species"]),
            Task::Classification,
            &classes,
            None,
        ),
        true,
    )
    .unwrap();
    assert!(has);
    assert_eq!(ds.schema.features, ["a", "b"]);
    assert_eq!(ds.x, [1.5, 2.5, 3.5, 4.5]);
    assert_eq!(ds.y, [2.0, 0.0]);
    assert_eq!(ds.n_outputs(), 3);

    // Without the target column: fine for predict, an error for eval.
    let (ds, has) = Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a"]),
            &strings(&["kind"]),
            Task::Classification,
            &classes,
            None,
        ),
        false,
    )
    .unwrap();
    assert!(!has);
    assert!(ds.y.is_empty());
    assert_eq!(ds.x, [1.5, 3.5]);
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a"]),
            &strings(&["kind"]),
            Task::Classification,
            &classes,
            None,
        ),
        true,
    ));
    assert_has(&e, &["p.csv:1:", "kind"]);

    // Every missing feature is listed.
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a", "c", "b", "d"]),
            &strings(&["species"]),
            Task::Classification,
            &classes,
            None,
        ),
        false,
    ));
    assert_has(&e, &["p.csv:1:", "missing the model's columns: c, d"]);

    // A label the model does not know.
    let classes2 = strings(&["setosa", "versicolor"]);
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a"]),
            &strings(&["species"]),
            Task::Classification,
            &classes2,
            None,
        ),
        true,
    ));
    assert_has(&e, &["p.csv:2:3", "'virginica'", "setosa, versicolor"]);
}

// ---------------------------------------------------------------- bad input: every one names its place

#[test]
fn missing_file_names_the_path() {
    let e = err(read_table(Path::new("/nonexistent/dir/nothere.csv")));
    assert_has(&e, &["/nonexistent/dir/nothere.csv"]);
}

#[test]
fn bad_files_name_file_line_and_column() {
    let cases: &[(&str, &[u8], &str, &str)] = &[
        ("empty.csv", b"", "empty.csv:1", "empty file"),
        ("blank.csv", b"\n\n  \n", "blank.csv:1", "empty file"),
        (
            "header_only.csv",
            b"a,b,y\n",
            "header_only.csv:2",
            "no data rows",
        ),
        (
            "ragged.csv",
            b"a,b,y\n1,2,3\n4,5,6\n7,8\n",
            "ragged.csv:4",
            "line 4 has 2 fields, header has 3",
        ),
        (
            "ragged_long.csv",
            b"a,b,y\n1,2,3,4\n",
            "ragged_long.csv:2",
            "line 2 has 4 fields, header has 3",
        ),
        (
            "noname.csv",
            b"a,,y\n1,2,3\n",
            "noname.csv:1:2",
            "empty column name",
        ),
        (
            "utf8.csv",
            b"a,b,y\n1,2,3\n4,\xff\xfe,6\n",
            "utf8.csv:3:2",
            "invalid UTF-8",
        ),
        (
            "utf8_crlf.csv",
            b"a,b,y\r\n\r\n1,2,3\r\n\r\n4,5,\xe9t\xe9\r\n",
            "utf8_crlf.csv:5:3",
            "invalid UTF-8",
        ),
        (
            "utf8_header.csv",
            b"a,\xff,y\n1,2,3\n",
            "utf8_header.csv:1:2",
            "invalid UTF-8",
        ),
        (
            "notgz.csv.gz",
            b"\x1f\x8b\x08\x00garbage",
            "notgz.csv.gz",
            "decompress",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, place, what) in cases {
        let p = write(dir.path(), name, bytes);
        assert_has(&err(read_table(&p)), &[place, what]);
    }
}

#[test]
fn bad_values_name_file_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "a,b,y\n1,2,3\n4,abc,6\n",
            ":3:2",
            "column 'b': 'abc' is not a number",
        ),
        (
            "a,b,y\n1,2,3\n4,5,6\n,5,6\n",
            ":4:1",
            "column 'a': missing value",
        ),
        ("a,b,y\n1,NaN,3\n", ":2:2", "NaN"),
        ("a,b,y\n1,2,3\n4,-inf,6\n", ":3:2", "infinite"),
        ("a,b,y\n1,2,3\n4,1e39,6\n", ":3:2", "infinite"),
        ("a,b,y\n1,2,3\n4,5,nan\n", ":3:3", "NaN"),
        ("a,b,y\n1,2,3\n4,5,inf\n", ":3:3", "infinite"),
        ("a,b,y\n1,2,3\n4,5,\n6,7,8\n", ":3:3", "missing value"),
        (
            "a,b,y\n1,2,\"\"\n4,5,cat\n",
            ":2:3",
            "column 'y': missing value",
        ),
        (
            "a,b,y\n1,2,cat\n4,5,cat\n",
            "one.csv:1:3",
            "only one class ('cat')",
        ),
        (
            "a,b,y\r\n1,2,3\r\n4,5x,6\r\n",
            ":3:2",
            "'5x' is not a number",
        ),
        (
            "a, b ,y\n1,\"2\", 3\n4,\"x\" , 6\n",
            ":3:2",
            "'x' is not a number",
        ),
    ];
    for (text, place, what) in cases {
        let e = err(load("one.csv", text, &["y"], &[], None));
        assert_has(&e, &["one.csv", place, what]);
    }
}

#[test]
fn bad_column_choices_are_flag_errors() {
    let text = "a,b,y,z\n1.5,2,3,4\n4.5,5,6,7\n";
    let e = err(load("c.csv", text, &["w"], &[], None));
    assert_has(
        &e,
        &[
            "--target",
            "no column 'w' in",
            "c.csv",
            "columns are: a, b, y, z",
        ],
    );
    let e = err(load("c.csv", text, &["y"], &["q"], None));
    assert_has(&e, &["--drop", "no column 'q'"]);
    let e = err(load("c.csv", text, &["Y"], &[], None));
    assert_has(&e, &["did you mean 'y'?"]);
    let e = err(load("c.csv", text, &["y"], &["y"], None));
    assert_has(&e, &["--drop", "'y' is a target"]);
    let e = err(load("c.csv", text, &[], &[], None));
    assert_has(&e, &["--target", "no target"]);
    let e = err(load("c.csv", text, &["y", "z"], &["a", "b"], None));
    assert_has(&e, &["--drop", "no feature columns"]);
    let e = err(load("c.csv", "y,z\n1,2\n3,4\n", &["y", "z"], &[], None));
    assert_has(&e, &["c.csv:1", "no feature columns"]);
    let e = err(load(
        "c.csv",
        text,
        &["y", "z"],
        &[],
        Some(Task::Classification),
    ));
    assert_has(&e, &["--target", "exactly one target column, got 2"]);
    let e = err(load(
        "c.csv",
        "a,y,z\n1,cat,2\n2,dog,3\n",
        &["y", "z"],
        &[],
        None,
    ));
    assert_has(
        &e,
        &["--target", "exactly one target column", "'cat' at line 2"],
    );
    let e = err(load("c.csv", text, &["y", "y"], &[], None));
    assert_has(&e, &["--target", "twice"]);
}

// ---------------------------------------------------------------- real data (optional)

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("WGTRAIN_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: no shared data at {} (set WGTRAIN_SHARED_DATA)",
            dir.display()
        );
        None
    }
}

#[test]
fn shipped_iris() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let t = read_table(&p).unwrap();
    let targets = strings(&["species"]);
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &[],
            task: None,
            window: None,
        },
    )
    .unwrap();
    assert_eq!(
        ds.schema.features,
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    );
    assert_eq!(ds.schema.classes, ["setosa", "versicolor", "virginica"]);
    assert_eq!(ds.rows, 150);
    assert_eq!(&ds.x[..4], [5.1, 3.5, 1.4, 0.2]);
    let (train, val) = split_indices(&ds, 0.2, 0, false).unwrap();
    assert_eq!((train.len(), val.len()), (120, 30));
}

#[test]
fn covid_train() {
    let Some(dir) = shared_data() else { return };
    let t = read_table(&dir.join("covid2021/covid.train.csv")).unwrap();
    assert_eq!(t.header.len(), 95);
    // The file repeats its 18 survey names for each of 3 days: they read as pandas names them,
    // and the bare repeated name is refused as a target.
    assert_eq!(&t.header[58..60], ["tested_positive", "cli.1"]);
    assert_eq!(t.header[94], "tested_positive.2");
    let (targets, drop) = (strings(&["tested_positive"]), strings(&["id"]));
    let spec = DataSpec {
        targets: &targets,
        drop: &drop,
        task: None,
        window: None,
    };
    let e = err(Dataset::from_table(&t, &spec));
    assert_has(
        &e,
        &[
            "--target",
            "3 columns called 'tested_positive'",
            "tested_positive.2 (column 95)",
        ],
    );
    let targets = strings(&["tested_positive.2"]);
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &drop,
            task: None,
            window: None,
        },
    )
    .unwrap();
    assert_eq!((ds.rows, ds.n_features(), ds.n_outputs()), (2700, 93, 1));
    assert_eq!(ds.schema.task, Task::Regression);
    assert_eq!(ds.schema.features[0], "AL");
    let (lo, hi) =
        ds.y.iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(
        (lo - 2.34).abs() < 0.01 && (hi - 40.96).abs() < 0.01,
        "{lo} {hi}"
    );
    // Predicting the mean gives MSE 58.0 (the data README's yardstick).
    let mean = ds.y.iter().map(|&v| v as f64).sum::<f64>() / 2700.0;
    let mse = ds.y.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 2700.0;
    assert!((mse - 58.0).abs() < 0.5, "{mse}");

    let test = read_table(&dir.join("covid2021/covid.test.csv")).unwrap();
    let (p, has) = Dataset::for_schema(
        &test,
        &schema(
            &ds.schema.features,
            &ds.schema.targets,
            ds.schema.task,
            &[],
            None,
        ),
        false,
    )
    .unwrap();
    assert!(!has);
    assert_eq!((p.rows, p.x.len()), (893, 893 * 93));
}

#[test]
fn mnist_test_gz() {
    let Some(dir) = shared_data() else { return };
    let start = std::time::Instant::now();
    let t = read_table(&dir.join("mnist/mnist_test.csv.gz")).unwrap();
    let targets = strings(&["label"]);
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &[],
            task: None,
            window: None,
        },
    )
    .unwrap();
    println!("mnist_test: {} rows in {:.2?}", ds.rows, start.elapsed());
    assert_eq!((ds.rows, ds.n_features()), (10_000, 784));
    assert_eq!(
        ds.schema.task,
        Task::Classification,
        "ten whole-number labels are classes unless --task says otherwise (issue 9)"
    );
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &[],
            task: Some(Task::Classification),
            window: None,
        },
    )
    .unwrap();
    assert_eq!(
        ds.schema.classes,
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    assert!(ds.x.iter().all(|&v| (0.0..=255.0).contains(&v)));
}

/// `cargo test --release --test data_pipeline -- --ignored --nocapture` to time the big one.
#[test]
#[ignore]
fn mnist_train_gz_timing() {
    let Some(dir) = shared_data() else { return };
    let start = std::time::Instant::now();
    let t = read_table(&dir.join("mnist/mnist_train.csv.gz")).unwrap();
    let read = start.elapsed();
    let targets = strings(&["label"]);
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &[],
            task: Some(Task::Classification),
            window: None,
        },
    )
    .unwrap();
    println!(
        "mnist_train: read {read:.2?}, parsed {:.2?} total",
        start.elapsed()
    );
    assert_eq!(
        (ds.rows, ds.n_features(), ds.schema.classes.len()),
        (60_000, 784, 10)
    );
}

#[test]
fn shipped_friedman1_and_views() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let t = read_table(&data.join("friedman1.csv")).unwrap();
    let targets = strings(&["y"]);
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &[],
            task: None,
            window: None,
        },
    )
    .unwrap();
    assert_eq!(
        (ds.rows, ds.n_features(), ds.schema.task),
        (2000, 10, Task::Regression)
    );
    assert!(ds.x.iter().all(|v| (0.0..=1.0).contains(v)));
    // y = 10 sin(π x1 x2) + 20 (x3 − 0.5)² + 10 x4 + 5 x5 + N(0, 1): the residual is the noise.
    let mut sq = 0.0;
    for r in 0..ds.rows {
        let x = &ds.x[r * 10..r * 10 + 10];
        let f = 10.0 * (std::f32::consts::PI * x[0] * x[1]).sin()
            + 20.0 * (x[2] - 0.5).powi(2)
            + 10.0 * x[3]
            + 5.0 * x[4];
        sq += ((ds.y[r] - f) as f64).powi(2);
    }
    let noise_var = sq / ds.rows as f64;
    assert!((0.85..1.15).contains(&noise_var), "{noise_var}");

    let t = read_table(&data.join("views.csv")).unwrap();
    assert_eq!(t.records.len(), 1826);
    assert_eq!(&t.records[0][0], "2017-01-01");
    assert_eq!(&t.records[1825][0], "2021-12-31");
    let (targets, drop) = (strings(&["views"]), strings(&["date"]));
    let ds = Dataset::from_table(
        &t,
        &DataSpec {
            targets: &targets,
            drop: &drop,
            task: None,
            window: Some(7),
        },
    )
    .unwrap();
    assert_eq!((ds.rows, ds.n_features()), (1819, 7));
    assert_eq!(ds.schema.features[0], "views[t-7]");
    // The first sample's window is the first week; its target the 8th day.
    let first: Vec<f32> = (0..8).map(|i| t.records[i][1].parse().unwrap()).collect();
    assert_eq!(&ds.x[..7], &first[..7]);
    assert_eq!(ds.y[0], first[7]);
    assert_eq!(ds.lines[0], 9);
}

#[test]
fn series_mode_is_regression_only() {
    let dir = tempfile::tempdir().unwrap();
    let t = read_table(&window_table(dir.path())).unwrap();
    let (targets, drop) = (strings(&["views"]), strings(&["date"]));
    let spec = DataSpec {
        targets: &targets,
        drop: &drop,
        task: Some(Task::Classification),
        window: Some(2),
    };
    assert_has(
        &err(Dataset::from_table(&t, &spec)),
        &["--window", "regression"],
    );
    let features = strings(&["views[t-2]", "views[t-1]"]);
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &features,
            &targets,
            Task::Classification,
            &strings(&["a", "b"]),
            Some(2),
        ),
        false,
    ));
    assert_has(&e, &["--window", "classifier"]);
    // A model whose features are not the window it claims.
    let e = err(Dataset::for_schema(
        &t,
        &schema(
            &strings(&["temp"]),
            &targets,
            Task::Regression,
            &[],
            Some(2),
        ),
        false,
    ));
    assert_has(&e, &["--window", "views[t-2], views[t-1]"]);
    // A bad value inside the series names its place.
    let p = write(dir.path(), "gap.csv", b"views\n10\n12\n\"\"\n14\n15\n");
    let t = read_table(&p).unwrap();
    let spec = DataSpec {
        targets: &targets,
        drop: &[],
        task: None,
        window: Some(2),
    };
    assert_has(
        &err(Dataset::from_table(&t, &spec)),
        &["gap.csv:4:1", "column 'views': missing value"],
    );
}

#[test]
fn subset_keeps_rows_in_the_given_order() {
    let ds = load(
        "s.csv",
        "a,b,y\n1.5,2.5,cat\n3.5,4.5,dog\n5.5,6.5,cat\n",
        &["y"],
        &[],
        None,
    )
    .unwrap();
    let sub = ds.subset(&[2, 0]);
    assert_eq!(sub.x, [5.5, 6.5, 1.5, 2.5]);
    assert_eq!(sub.y, [0.0, 0.0]);
    assert_eq!(sub.lines, [4, 2]);
    assert_eq!(
        (sub.rows, sub.n_outputs(), sub.schema.classes.clone()),
        (2, 2, strings(&["cat", "dog"]))
    );
    let multi = load("m.csv", "a,y,z\n1.5,2,3\n4.5,5,6\n", &["y", "z"], &[], None).unwrap();
    assert_eq!(multi.subset(&[1]).y, [5.0, 6.0]);
}

#[test]
fn for_model_regression_targets() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.csv", b"b,a,y1\n2.5,1.5,7.25\n4.5,3.5,-8.5\n");
    let t = read_table(&p).unwrap();
    let (ds, has) = Dataset::for_schema(
        &t,
        &schema(
            &strings(&["a", "b"]),
            &strings(&["y1"]),
            Task::Regression,
            &[],
            None,
        ),
        true,
    )
    .unwrap();
    assert!(has);
    assert_eq!(
        (ds.x.clone(), ds.y.clone()),
        (vec![1.5, 2.5, 3.5, 4.5], vec![7.25, -8.5])
    );
    // One of two targets missing: no targets for predict, an error naming it for eval.
    let two = strings(&["y1", "y2"]);
    let (ds, has) = Dataset::for_schema(
        &t,
        &schema(&strings(&["a"]), &two, Task::Regression, &[], None),
        false,
    )
    .unwrap();
    assert!(!has && ds.y.is_empty());
    let e = err(Dataset::for_schema(
        &t,
        &schema(&strings(&["a"]), &two, Task::Regression, &[], None),
        true,
    ));
    assert_has(&e, &["r.csv:1", "missing the target columns: y2"]);
}
