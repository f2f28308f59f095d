//! A graph model's summary, character for character as Keras 3.15 prints the same model
//! (`model.summary()`, captured from Keras on this repository's reference host).

use rnnkit::prelude::*;

/// Keras's output for the model below (an encoder whose states start a decoder, a Dense
/// shared by both, an Add).
const KERAS: &str = r#"Model: "seq2seq"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                  ┃ Output Shape              ┃         Param # ┃ Connected to               ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ enc_in (InputLayer)           │ (None, None, 3)           │               0 │ -                          │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ dec_in (InputLayer)           │ (None, None, 2)           │               0 │ -                          │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ enc (LSTM)                    │ [(None, 8), (None, 8),    │             384 │ enc_in[0][0]               │
│                               │ (None, 8)]                │                 │                            │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ dec (LSTM)                    │ (None, None, 8)           │             352 │ dec_in[0][0], enc[0][1],   │
│                               │                           │                 │ enc[0][2]                  │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ out (Dense)                   │ (None, 2)                 │              18 │ dec[0][0], enc[0][0]       │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ add (Add)                     │ (None, None, 2)           │               0 │ out[0][0], out[0][0]       │
└───────────────────────────────┴───────────────────────────┴─────────────────┴────────────────────────────┘
 Total params: 754 (2.95 KB)
 Trainable params: 754 (2.95 KB)
 Non-trainable params: 0 (0.00 B)"#;

#[test]
fn the_summary_of_a_graph_model_is_keras_s() -> Result<(), Error> {
    let mut g = Graph::<f32>::new(0);
    let enc_in = g.input("enc_in", &[None, Some(3)])?;
    let dec_in = g.input("dec_in", &[None, Some(2)])?;
    let enc = g.rnn(&LstmConfig::new(8).name("enc"), enc_in).call()?;
    let dec = g
        .rnn(
            &LstmConfig::new(8).return_sequences(true).name("dec"),
            dec_in,
        )
        .initial_state(&enc.states)
        .call()?;
    let y = g.apply(&DenseConfig::new(2).name("out"), dec.out)?;
    let z = g.reuse(g.layer_of(y)?, enc.out)?;
    let s = g.apply_list(&rnnkit::layers::AddConfig::new().name("add"), &[y, y])?;
    let model = g.build(&[enc_in, dec_in], &[s, z])?.named("seq2seq");
    assert_eq!(model.summary().to_string(), KERAS);
    Ok(())
}
