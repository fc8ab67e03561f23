//! `wgtrain sweep --grid FLAG=V1|V2|…`: the axes of a grid search and their combinations.
//!
//! Values are separated by `|`, never by `,`, so a value may itself be a list:
//! `--grid 'hidden=64|128,64'` is two values, `64` and `128,64`.

use crate::error::{Error, Result};

/// One `--grid` flag: a train flag (without its dashes) and the values to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub flag: String,
    pub values: Vec<String>,
}

/// Flags a grid cannot vary: they name the data, the outputs or the sweep itself.
const FIXED: &[&str] = &[
    "target", "out", "metrics", "plot", "val", "json", "quiet", "cv", "runs", "grid",
];

/// Parses one `--grid` value.
pub fn parse_axis(s: &str) -> Result<Axis> {
    let bad = |msg: String| Error::flag("--grid", msg);
    let (flag, values) = s
        .split_once('=')
        .ok_or_else(|| bad(format!("'{s}' is not FLAG=V1|V2|…, e.g. 'lr=0.01|0.001'")))?;
    let flag = flag.trim().trim_start_matches('-').to_string();
    if flag.is_empty()
        || !flag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(format!("'{s}': '{flag}' is not a flag name")));
    }
    let flag = flag.replace('_', "-");
    if FIXED.contains(&flag.as_str()) {
        return Err(bad(format!(
            "--{flag} cannot vary in a sweep (it names the data, the outputs or the sweep)"
        )));
    }
    let values: Vec<String> = values.split('|').map(|v| v.trim().to_string()).collect();
    if let Some(i) = values.iter().position(String::is_empty) {
        return Err(bad(format!("'{s}': value {} is empty", i + 1)));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(bad(format!("'{s}': value '{v}' is given twice")));
        }
    }
    Ok(Axis { flag, values })
}

/// Parses every `--grid` value, refusing a flag given twice.
pub fn parse_grid(specs: &[String]) -> Result<Vec<Axis>> {
    if specs.is_empty() {
        return Err(Error::flag(
            "--grid",
            "give at least one, e.g. --grid 'lr=0.01|0.001' --grid 'hidden=64|128,64'",
        ));
    }
    let mut axes: Vec<Axis> = Vec::new();
    for s in specs {
        let a = parse_axis(s)?;
        if axes.iter().any(|b| b.flag == a.flag) {
            return Err(Error::flag(
                "--grid",
                format!(
                    "--{} is given twice; put all its values in one --grid",
                    a.flag
                ),
            ));
        }
        axes.push(a);
    }
    Ok(axes)
}

/// Every combination, the last axis varying fastest; each a `(flag, value)` per axis.
pub fn combinations(axes: &[Axis]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in axes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                a.values.iter().map(move |v| {
                    let mut c = prefix.clone();
                    c.push((a.flag.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    out
}

/// `base` train arguments with each `(flag, value)` set: an occurrence of the flag in `base`
/// (as `--flag V` or `--flag=V`) is replaced, otherwise `--flag V` is appended.
pub fn apply(base: &[String], combo: &[(String, String)]) -> Vec<String> {
    let mut args = base.to_vec();
    for (flag, value) in combo {
        let long = format!("--{flag}");
        let eq = format!("--{flag}=");
        let mut out = Vec::with_capacity(args.len() + 2);
        let mut i = 0;
        while i < args.len() {
            if args[i] == long {
                i += 2;
                continue;
            }
            if args[i].starts_with(&eq) {
                i += 1;
                continue;
            }
            out.push(args[i].clone());
            i += 1;
        }
        // `=` keeps a value that starts with '-' from reading as a flag.
        out.push(format!("{long}={value}"));
        args = out;
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn values_may_hold_commas() {
        let a = parse_axis("hidden=64|128,64|32,32,32").unwrap();
        assert_eq!(a.flag, "hidden");
        assert_eq!(a.values, ["64", "128,64", "32,32,32"]);
        assert_eq!(
            parse_axis("--batch_size= 16 | 64").unwrap().flag,
            "batch-size"
        );
        assert_eq!(parse_axis("lr=0.01").unwrap().values, ["0.01"]);
    }

    #[test]
    fn bad_axes_name_the_flag() {
        for bad in [
            "lr",
            "=1|2",
            "lr=1||2",
            "lr=1|1",
            "target=a|b",
            "out=x|y",
            "l r=1",
        ] {
            let e = parse_axis(bad).unwrap_err().to_string();
            assert!(e.starts_with("--grid:"), "{bad}: {e}");
        }
        let e = parse_grid(&s(&["lr=1|2", "lr=3"])).unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
        assert!(parse_grid(&[]).is_err());
    }

    #[test]
    fn combinations_last_axis_fastest() {
        let axes = parse_grid(&s(&["lr=0.1|0.01", "hidden=8|16,8|4"])).unwrap();
        let c = combinations(&axes);
        assert_eq!(c.len(), 6);
        assert_eq!(
            c[0],
            [("lr".into(), "0.1".into()), ("hidden".into(), "8".into())]
        );
        assert_eq!(c[1][1].1, "16,8");
        assert_eq!(
            c[5],
            [("lr".into(), "0.01".into()), ("hidden".into(), "4".into())]
        );
    }

    #[test]
    fn apply_replaces_a_base_flag() {
        let base = s(&["--epochs", "50", "--lr=0.5", "--hidden", "3"]);
        let combo = [
            ("lr".to_string(), "0.01".to_string()),
            ("hidden".into(), "16,8".into()),
        ];
        assert_eq!(
            apply(&base, &combo),
            ["--epochs", "50", "--lr=0.01", "--hidden=16,8"]
        );
        let combo = [("weight-decay".to_string(), "-1".to_string())];
        assert_eq!(apply(&base, &combo).last().unwrap(), "--weight-decay=-1");
    }
}
