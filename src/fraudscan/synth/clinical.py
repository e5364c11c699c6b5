"""The clinical model: kinds of visits and stays with their diagnoses, departments and items.

A *kind* fixes who can have it (age band, sex), where (departments, facility level/type) and
what is billed. Item restrictions in the catalogue are enforced afterwards by
:func:`fraudscan.synth.activity.sanitize`, so a kind may list an item that is sometimes not
payable (e.g. CT at a level-1 facility) and the line is simply not billed there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of encounter."""

    name: str
    setting: str
    """``op`` outpatient, ``ip`` inpatient, ``chronic`` monthly refill, ``pharm`` OTC purchase."""
    med_type: str
    dx: tuple[str, ...]
    depts: tuple[str, ...] = ()
    age: tuple[float, float] = (0.0, 120.0)
    sex: str | None = None
    weight: float = 1.0
    winter: bool = False
    min_level: int = 1
    fac_types: tuple[str, ...] = ()
    consult: str | None = "consult_op"
    drugs: tuple[tuple[str, ...], ...] = ()
    n_drugs: tuple[int, int] = (1, 3)
    services: tuple[tuple[str, float], ...] = ()
    herbs: bool = False
    los: tuple[float, float] = (6.0, 0.35)
    daily: tuple[tuple[str, float], ...] = ()
    surgery: tuple[str, ...] = ()
    procedure: str | None = None
    sec_dx: tuple[str, ...] = ()
    drg: str = ""
    rehab: bool = False


_HOSP = ("general_hospital", "tcm_hospital", "specialist_hospital")
_ANY_IP = ("general_hospital", "tcm_hospital", "specialist_hospital", "community_health_centre",
           "township_health_centre")
_IP_DAILY = (("bed", 1.0), ("nursing2", 1.0), ("consult_ip", 1.0))
_ADM_LABS = (("blood_routine", 0.95), ("urine_routine", 0.7), ("liver_fn", 0.6),
             ("kidney_fn", 0.6), ("electrolytes", 0.5), ("coag", 0.3), ("ecg", 0.5))
_CC = ("I10", "E11.9", "E78.5", "I25.1", "K76.0")
MCC = ("J96.0", "N17.9", "I50.9", "E87.1")
CC = _CC

OUTPATIENT: tuple[Kind, ...] = (
    Kind("op_uri_child", "op", "11", ("J06.9", "J02.9", "J20.9"), ("A07", "A02", "A03"),
         age=(0.1, 14), weight=6.0, winter=True,
         drugs=(("child_cold", "xiaoer_tuire"), ("child_amox",), ("cough_syrup",)),
         services=(("blood_routine", 0.4), ("crp", 0.3))),
    Kind("op_uri_adult", "op", "11", ("J06.9", "J02.9", "J20.9"), ("A03", "A02"),
         age=(14, 120), weight=4.0, winter=True,
         drugs=(("amoxicillin", "cefuroxime", "azithromycin"), ("ibuprofen",),
                ("lianhua", "banlangen"), ("cough_syrup",)),
         services=(("blood_routine", 0.3), ("crp", 0.2), ("xray_chest", 0.08))),
    Kind("op_gi", "op", "11", ("K29.7", "K30", "A09.9"), ("A03", "A02"), age=(6, 120),
         weight=2.0, drugs=(("omeprazole",), ("domperidone", "mosapride"), ("huoxiang",)),
         services=(("us_abd", 0.15), ("blood_routine", 0.2))),
    Kind("op_msk", "op", "11", ("M54.5", "M17.9", "M25.5"), ("A04", "A03", "A02", "A50"),
         age=(25, 120), weight=2.0,
         drugs=(("celecoxib", "ibuprofen"), ("diclofenac_gel", "yunnan_baiyao")),
         services=(("xray_chest", 0.05), ("tuina", 0.15), ("acupuncture", 0.15))),
    Kind("op_skin", "op", "11", ("L30.9", "L50.9"), ("A03", "A02"), weight=1.0,
         drugs=(("loratadine",), ("hydrocortisone",)), n_drugs=(1, 2)),
    Kind("op_gyn", "op", "11", ("N76.0", "N76.1"), ("A05", "A02"), age=(18, 70), sex="2",
         weight=1.5, drugs=(("metronidazole_vag",),), n_drugs=(1, 1),
         services=(("leucorrhea", 0.8), ("us_gyn", 0.3))),
    Kind("op_prostate", "op", "11", ("N40",), ("A04", "A03"), age=(50, 120), sex="1",
         weight=1.5, drugs=(("tamsulosin",),), n_drugs=(1, 1),
         services=(("psa", 0.5), ("us_abd", 0.2))),
    Kind("op_injury", "op", "13", ("S60.0", "S93.4", "S01.8"), ("A04",), age=(3, 120),
         weight=1.0, consult="consult_er",
         drugs=(("ibuprofen",), ("yunnan_baiyao",)), n_drugs=(1, 2),
         services=(("dressing", 0.6), ("xray_chest", 0.3), ("iv_set", 0.1))),
    Kind("op_tcm", "op", "11", ("R53", "R51", "K59.0"), ("A50",), age=(14, 120), weight=1.0,
         drugs=(("liuwei",),), n_drugs=(0, 1), herbs=True,
         services=(("acupuncture", 0.3),)),
)

CHRONIC: tuple[Kind, ...] = (
    Kind("ch_htn", "chronic", "14", ("I10",), ("A03", "A02"), age=(40, 120), weight=5.0,
         drugs=(("amlodipine",), ("valsartan",), ("aspirin",), ("atorvastatin",)),
         n_drugs=(1, 2), services=(("kidney_fn", 0.05),)),
    Kind("ch_dm", "chronic", "14", ("E11.9",), ("A03", "A02"), age=(40, 120), weight=3.0,
         drugs=(("metformin",), ("acarbose",), ("insulin_glargine",), ("atorvastatin",)),
         n_drugs=(1, 2), services=(("glucose_test", 0.3), ("hba1c", 0.15))),
    Kind("ch_chd", "chronic", "14", ("I25.1",), ("A03",), age=(45, 120), weight=2.0,
         drugs=(("aspirin",), ("atorvastatin",), ("danshen",)), n_drugs=(1, 2)),
    Kind("ch_copd", "chronic", "14", ("J44.9",), ("A03",), age=(50, 120), weight=1.0,
         drugs=(("tiotropium",),), n_drugs=(1, 1)),
    Kind("ch_hbv", "chronic", "14", ("B18.1",), ("A03",), age=(20, 80), weight=0.6,
         drugs=(("entecavir",),), n_drugs=(1, 1), services=(("liver_fn", 0.1),)),
    Kind("ch_cml", "chronic", "14", ("C92.1",), ("A03",), age=(30, 85), weight=0.05,
         min_level=2, drugs=(("imatinib",),), n_drugs=(1, 1)),
)

PHARMACY_OTC: tuple[tuple[str, ...], ...] = (
    ("ibuprofen",), ("lianhua", "banlangen"), ("huoxiang",), ("liuwei",), ("vitamin_c",),
    ("loratadine",), ("omeprazole",), ("cough_syrup",), ("ejiao", "xiyangshen"),
    ("yunnan_baiyao", "diclofenac_gel"),
)
HERBS = ("huangqi", "dangshen", "danggui", "gancao", "baizhu", "fuling", "chuanxiong",
         "chenpi")

INPATIENT: tuple[Kind, ...] = (
    Kind("ip_pneumonia", "ip", "21", ("J18.9",), ("A03", "A02"), age=(14, 120), weight=4.0,
         winter=True, fac_types=_ANY_IP, los=(7, 0.35), drg="ES3",
         services=(*_ADM_LABS, ("crp", 0.9), ("xray_chest", 0.9), ("ct", 0.3),
                   ("iv_set", 0.9), ("cannula", 0.8)),
         daily=(*_IP_DAILY, ("iv_drip", 0.9), ("oxygen", 0.3), ("nebulize", 0.4)),
         drugs=(("ceftriaxone", "levofloxacin"), ("saline", "glucose"), ("budesonide_neb",)),
         sec_dx=_CC),
    Kind("ip_pneumonia_child", "ip", "21", ("J18.9",), ("A07",), age=(0.1, 14), weight=3.0,
         winter=True, fac_types=_HOSP, min_level=2, los=(6, 0.3), drg="ES3",
         services=(("blood_routine", 0.95), ("crp", 0.9), ("xray_chest", 0.9),
                   ("cannula", 0.8)),
         daily=(*_IP_DAILY, ("iv_drip", 0.9), ("nebulize", 0.6)),
         drugs=(("ceftriaxone",), ("saline", "glucose"), ("budesonide_neb",))),
    Kind("ip_copd", "ip", "21", ("J44.1",), ("A03",), age=(50, 120), weight=1.5,
         winter=True, fac_types=_ANY_IP, los=(9, 0.35), drg="ET2",
         services=(*_ADM_LABS, ("xray_chest", 0.8), ("ct", 0.3)),
         daily=(*_IP_DAILY, ("oxygen", 0.8), ("nebulize", 0.7), ("iv_drip", 0.8)),
         drugs=(("ceftriaxone", "levofloxacin"), ("saline",), ("budesonide_neb",)),
         sec_dx=_CC),
    Kind("ip_stroke", "ip", "21", ("I63.9",), ("A03",), age=(45, 120), weight=1.5,
         fac_types=_HOSP, min_level=2, los=(12, 0.4), drg="BR2",
         services=(*_ADM_LABS, ("lipids", 0.8), ("ct", 0.9), ("mri", 0.5)),
         daily=(*_IP_DAILY, ("iv_drip", 0.8)),
         drugs=(("xuesaitong",), ("saline",), ("lmwh",), ("pantoprazole",)), sec_dx=_CC),
    Kind("ip_chd", "ip", "21", ("I20.0", "I25.1"), ("A03",), age=(45, 120), weight=1.5,
         fac_types=_ANY_IP, los=(7, 0.35), drg="FR2",
         services=(*_ADM_LABS, ("cardiac", 0.8), ("lipids", 0.7)),
         daily=(*_IP_DAILY, ("iv_drip", 0.6)), drugs=(("lmwh",), ("saline",)), sec_dx=_CC),
    Kind("ip_pci", "ip", "21", ("I20.0",), ("A03",), age=(45, 90), weight=0.4,
         fac_types=("general_hospital",), min_level=3, los=(6, 0.3), drg="FM1",
         services=(*_ADM_LABS, ("cardiac", 0.9)), daily=(*_IP_DAILY, ("iv_drip", 0.5)),
         drugs=(("lmwh",), ("saline",)), surgery=("pci", "stent"), procedure="36.0601",
         sec_dx=_CC),
    Kind("ip_appendicitis", "ip", "21", ("K35.8",), ("A04",), age=(10, 80), weight=0.8,
         fac_types=_HOSP, min_level=2, los=(5, 0.3), drg="GB2",
         services=(*_ADM_LABS, ("us_abd", 0.8), ("cannula", 0.9)),
         daily=(*_IP_DAILY, ("iv_drip", 0.8), ("dressing", 0.5)),
         drugs=(("cefazolin", "ceftriaxone"), ("saline",)),
         surgery=("appendectomy", "anaesthesia", "suture"), procedure="47.0901"),
    Kind("ip_chole", "ip", "21", ("K80.1",), ("A04",), age=(30, 90), weight=0.8,
         fac_types=_HOSP, min_level=2, los=(6, 0.3), drg="HC2",
         services=(*_ADM_LABS, ("us_abd", 0.9), ("ct", 0.2), ("cannula", 0.9)),
         daily=(*_IP_DAILY, ("iv_drip", 0.7), ("dressing", 0.4)),
         drugs=(("cefazolin",), ("saline",), ("pantoprazole",)),
         surgery=("lap_chole", "anaesthesia", "suture"), procedure="51.2301", sec_dx=_CC),
    Kind("ip_fracture", "ip", "21", ("S72.0",), ("A04",), age=(50, 120), weight=0.7,
         fac_types=_HOSP, min_level=2, los=(12, 0.3), drg="IB2",
         services=(*_ADM_LABS, ("xray_chest", 0.9), ("ct", 0.6), ("cannula", 0.9)),
         daily=(*_IP_DAILY, ("iv_drip", 0.5), ("dressing", 0.4)),
         drugs=(("cefazolin",), ("saline",), ("lmwh",)),
         surgery=("orif_femur", "bone_plate", "anaesthesia", "suture"), procedure="79.3501",
         sec_dx=_CC),
    Kind("ip_tka", "ip", "21", ("M17.1",), ("A04",), age=(55, 90), weight=0.4,
         fac_types=_HOSP, min_level=3, los=(10, 0.25), drg="IC2",
         services=(*_ADM_LABS, ("xray_chest", 0.9), ("cannula", 0.9)),
         daily=(*_IP_DAILY, ("dressing", 0.4)), drugs=(("cefazolin",), ("lmwh",)),
         surgery=("tka", "knee_prosthesis", "anaesthesia", "suture"), procedure="81.5401",
         sec_dx=_CC),
    Kind("ip_disc", "ip", "21", ("M51.2",), ("A04",), age=(30, 80), weight=0.5,
         fac_types=_HOSP, min_level=2, los=(9, 0.3), drg="IB3",
         services=(*_ADM_LABS, ("mri", 0.9)), daily=(*_IP_DAILY, ("dressing", 0.4)),
         drugs=(("cefazolin",), ("saline",)),
         surgery=("discectomy", "anaesthesia", "suture"), procedure="80.5101"),
    Kind("ip_turp", "ip", "21", ("N40",), ("A04",), age=(55, 95), sex="1", weight=0.4,
         fac_types=_HOSP, min_level=2, los=(7, 0.3), drg="LB1",
         services=(*_ADM_LABS, ("psa", 0.8), ("us_abd", 0.7)),
         daily=(*_IP_DAILY, ("catheter", 0.3)), drugs=(("cefazolin",), ("saline",)),
         surgery=("turp", "epidural", "urinary_cath"), procedure="60.2901", sec_dx=_CC),
    Kind("ip_lumbar", "ip", "21", ("M54.5", "M51.2"), ("A50", "A03", "A21"), age=(30, 120),
         weight=1.5, fac_types=_ANY_IP, los=(10, 0.3), drg="IU2",
         services=(("blood_routine", 0.9), ("xray_chest", 0.4), ("ct", 0.3)),
         daily=(*_IP_DAILY, ("acupuncture", 0.7), ("tuina", 0.7), ("pt", 0.3)),
         drugs=(("diclofenac_gel",), ("saline",)), n_drugs=(0, 1)),
    Kind("ip_htn_dm", "ip", "21", ("I10", "E11.9"), ("A03", "A02"), age=(45, 120),
         weight=1.5, fac_types=_ANY_IP, los=(8, 0.3), drg="FT2",
         services=(*_ADM_LABS, ("glucose_test", 0.9), ("lipids", 0.7), ("us_abd", 0.3)),
         daily=(*_IP_DAILY, ("iv_drip", 0.6)),
         drugs=(("saline", "glucose"), ("insulin_regular",)), sec_dx=_CC),
    Kind("ip_gastro", "ip", "21", ("K29.7", "A09.9"), ("A03", "A02"), age=(6, 120),
         weight=1.0, fac_types=_ANY_IP, los=(5, 0.3), drg="GU2",
         services=(*_ADM_LABS, ("us_abd", 0.5)), daily=(*_IP_DAILY, ("iv_drip", 0.8)),
         drugs=(("pantoprazole",), ("saline", "glucose"))),
    Kind("ip_delivery", "ip", "52", ("O80",), ("A05",), age=(20, 42), sex="2", weight=1.0,
         fac_types=_HOSP, los=(3, 0.2), drg="OF1", consult=None,
         services=(("blood_routine", 0.95), ("us_obst", 0.9), ("coag", 0.6)),
         daily=(("bed", 1.0), ("nursing1", 1.0), ("consult_ip", 1.0)),
         drugs=(("oxytocin",),), n_drugs=(1, 1), surgery=("delivery",),
         procedure="73.5901"),
    Kind("ip_caesarean", "ip", "52", ("O82.0",), ("A05",), age=(20, 42), sex="2",
         weight=0.8, fac_types=_HOSP, min_level=2, los=(5, 0.2), drg="OB1", consult=None,
         services=(("blood_routine", 0.95), ("us_obst", 0.9), ("coag", 0.9),
                   ("cannula", 0.9)),
         daily=(("bed", 1.0), ("nursing1", 1.0), ("consult_ip", 1.0), ("iv_drip", 0.6)),
         drugs=(("oxytocin",), ("cefazolin",)), n_drugs=(2, 2),
         surgery=("caesarean", "epidural", "suture"), procedure="74.1x01"),
    Kind("ip_rehab", "ip", "21", ("I69.3",), ("A21",), age=(45, 120), weight=0.6,
         fac_types=(*_HOSP, "rehabilitation_centre"), min_level=2, los=(21, 0.3),
         drg="BZ1", services=(("blood_routine", 0.8), ("ecg", 0.5)),
         daily=(("bed", 1.0), ("nursing2", 1.0), ("consult_ip", 1.0), ("pt", 0.9),
                ("ot", 0.7), ("hemiplegia", 0.6)),
         drugs=(("naoxintong",),), n_drugs=(0, 0), rehab=True, sec_dx=("I10",)),
    Kind("ip_work_injury", "ip", "21", ("S62.6",), ("A04",), age=(20, 60), weight=0.0,
         fac_types=_HOSP, min_level=2, los=(8, 0.3), drg="IZ2",
         services=(("xray_chest", 0.9), ("blood_routine", 0.9)),
         daily=(*_IP_DAILY, ("dressing", 0.6), ("injury_rehab", 0.5)),
         drugs=(("cefazolin",),), n_drugs=(1, 1)),
)
NEONATAL = Kind("ip_neonatal", "ip", "21", ("P59.9",), ("A07",), fac_types=_HOSP,
                min_level=2, los=(4, 0.3), drg="PU1",
                services=(("bilirubin_nb", 1.0), ("blood_routine", 0.8), ("vitamin_k1", 0.5)),
                daily=(*_IP_DAILY, ("phototherapy", 0.9)), n_drugs=(0, 0))
KINDS = {k.name: k for k in (*OUTPATIENT, *CHRONIC, *INPATIENT, NEONATAL)}
