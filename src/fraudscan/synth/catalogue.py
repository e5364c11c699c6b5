"""The synthetic insurance catalogue (医保目录): items, national-looking codes and restrictions.

Items are declared once as templates (a *key* used by the clinical model) and expanded into
manufacturer variants so the catalogue has a realistic size (~450 rows). The catalogue does not
depend on the seed, so rule authors can rely on stable codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

Y = 365  # days per year for age limits


@dataclass(frozen=True)
class ItemSpec:
    """One catalogue template; ``variants`` rows are generated from it."""

    key: str
    item_class: str
    name: str
    unit: str
    price: float
    grade: str = "A"
    variants: int = 1
    atc: str = ""
    sex: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    level: int | None = None
    care: str | None = None
    ins: str | None = None
    ind: str | None = None
    qty_day: float | None = None
    days_supply: int | None = None
    per_stay: int | None = None
    period: tuple[int, int] | None = None
    course: int | None = None
    dept: str | None = None
    group: str | None = None
    trace: bool = False
    resale: bool = False
    high_value: bool = False
    replaced: bool = False


IP = "21;52"
S = ItemSpec
SPECS: tuple[ItemSpec, ...] = (
    # --- western drugs dispensed by the box (outpatient / pharmacy) -------------------------
    S("amoxicillin", "western_drug", "阿莫西林胶囊", "盒", 12.5, variants=5, atc="J01CA",
      days_supply=7, trace=True),
    S("cefuroxime", "western_drug", "头孢呋辛酯片", "盒", 28.0, variants=3, atc="J01DC",
      days_supply=7, trace=True),
    S("azithromycin", "western_drug", "阿奇霉素片", "盒", 18.6, variants=4, atc="J01FA",
      days_supply=7, trace=True),
    S("ibuprofen", "western_drug", "布洛芬缓释胶囊", "盒", 9.8, variants=4, atc="M01AE",
      trace=True),
    S("child_cold", "western_drug", "小儿氨酚黄那敏颗粒", "盒", 10.5, variants=3, atc="N02BE",
      age_max=14 * Y, trace=True),
    S("child_amox", "western_drug", "阿莫西林颗粒(儿童)", "盒", 11.0, variants=2, atc="J01CA",
      age_max=14 * Y, days_supply=7, trace=True),
    S("cough_syrup", "western_drug", "复方甘草口服溶液", "瓶", 6.2, variants=3, atc="R05DA"),
    S("omeprazole", "western_drug", "奥美拉唑肠溶胶囊", "盒", 15.4, variants=5, atc="A02BC",
      trace=True),
    S("domperidone", "western_drug", "多潘立酮片", "盒", 12.1, variants=3, atc="A03FA",
      trace=True),
    S("mosapride", "western_drug", "枸橼酸莫沙必利片", "盒", 21.0, variants=2, atc="A03FA",
      trace=True),
    S("loratadine", "western_drug", "氯雷他定片", "盒", 10.3, variants=4, atc="R06AX",
      trace=True),
    S("hydrocortisone", "western_drug", "丁酸氢化可的松乳膏", "支", 8.5, variants=2,
      atc="D07AB"),
    S("diclofenac_gel", "western_drug", "双氯芬酸二乙胺乳胶剂", "支", 18.0, variants=2,
      atc="M02AA"),
    S("celecoxib", "western_drug", "塞来昔布胶囊", "盒", 30.2, variants=3, atc="M01AH",
      age_min=18 * Y, trace=True),
    S("metronidazole_vag", "western_drug", "甲硝唑阴道泡腾片", "盒", 9.6, variants=2,
      atc="G01AF", sex="2", trace=True),
    S("tamsulosin", "western_drug", "盐酸坦索罗辛缓释胶囊", "盒", 36.0, variants=3,
      atc="G04CA", sex="1", ind="N40", trace=True),
    S("vitamin_c", "western_drug", "维生素C片", "瓶", 3.5, variants=3, atc="A11GA"),
    # chronic drugs (drug_group set; monthly refills)
    S("amlodipine", "western_drug", "苯磺酸氨氯地平片", "盒", 21.5, variants=5, atc="C08CA",
      ind="I10;I11;I20;I25", days_supply=30, group="C08CA", trace=True, replaced=True),
    S("valsartan", "western_drug", "缬沙坦胶囊", "盒", 28.4, variants=4, atc="C09CA",
      ind="I10;I11;I50", days_supply=30, group="C09CA", trace=True),
    S("metformin", "western_drug", "盐酸二甲双胍片", "盒", 12.6, variants=5, atc="A10BA",
      ind="E11", days_supply=30, group="A10BA", trace=True),
    S("acarbose", "western_drug", "阿卡波糖片", "盒", 39.0, variants=3, atc="A10BF",
      ind="E11", days_supply=30, group="A10BF", trace=True),
    S("atorvastatin", "western_drug", "阿托伐他汀钙片", "盒", 26.7, variants=4, atc="C10AA",
      ind="I10;I20;I25;I63;I69;E11;E78", days_supply=30, group="C10AA", trace=True),
    S("aspirin", "western_drug", "阿司匹林肠溶片", "盒", 15.0, variants=3, atc="B01AC",
      days_supply=30, group="B01AC", trace=True),
    S("tiotropium", "western_drug", "噻托溴铵粉雾剂", "盒", 62.0, "B", variants=2, atc="R03BB",
      ind="J44", days_supply=30, group="R03BB", trace=True),
    S("insulin_glargine", "western_drug", "甘精胰岛素注射液", "支", 178.0, "B", variants=3,
      atc="A10AE", ind="E10;E11", days_supply=30, group="A10AE", trace=True, resale=True,
      high_value=True),
    S("entecavir", "western_drug", "恩替卡韦分散片", "盒", 92.0, "B", variants=3, atc="J05AF",
      ind="B18", days_supply=30, group="J05AF", trace=True, resale=True),
    S("imatinib", "western_drug", "甲磺酸伊马替尼片", "盒", 1260.0, "B", variants=2,
      atc="L01XE", ind="C92", level=2, days_supply=30, group="L01XE", trace=True,
      resale=True, high_value=True),
    # --- inpatient western drugs (vials / bags) ----------------------------------------------
    S("saline", "western_drug", "0.9%氯化钠注射液", "袋", 3.2, variants=4, atc="B05BB",
      care=IP),
    S("glucose", "western_drug", "5%葡萄糖注射液", "袋", 3.6, variants=3, atc="B05BA",
      care=IP),
    S("ceftriaxone", "western_drug", "注射用头孢曲松钠", "支", 18.0, variants=4, atc="J01DD",
      care=IP, qty_day=2),
    S("levofloxacin", "western_drug", "左氧氟沙星氯化钠注射液", "袋", 25.0, variants=3,
      atc="J01MA", care=IP, qty_day=1, age_min=18 * Y),
    S("pantoprazole", "western_drug", "注射用泮托拉唑钠", "支", 30.0, variants=3, atc="A02BC",
      care=IP, qty_day=2),
    S("lmwh", "western_drug", "低分子肝素钙注射液", "支", 35.0, "B", variants=2, atc="B01AB",
      care=IP, qty_day=2),
    S("cefazolin", "western_drug", "注射用头孢唑林钠", "支", 12.0, variants=3, atc="J01DB",
      care=IP, qty_day=3),
    S("budesonide_neb", "western_drug", "吸入用布地奈德混悬液", "支", 8.8, variants=2,
      atc="R03BA", qty_day=4),
    S("insulin_regular", "western_drug", "重组人胰岛素注射液", "支", 46.0, variants=2,
      atc="A10AB", care=IP, ind="E10;E11;O24"),
    S("parenteral", "western_drug", "脂肪乳氨基酸(17)葡萄糖(11%)注射液", "袋", 186.0, "B",
      variants=2, atc="B05BA", care=IP, level=2, qty_day=1),
    S("oxytocin", "western_drug", "缩宫素注射液", "支", 3.0, variants=2, atc="H01BB",
      care="52", ins="510", sex="2"),
    S("vitamin_k1", "western_drug", "维生素K1注射液(新生儿)", "支", 2.1, atc="B02BA",
      age_max=28, care=IP),
    S("furosemide", "western_drug", "呋塞米注射液", "支", 1.5, variants=2, atc="C03CA",
      care=IP),
    S("epo", "western_drug", "重组人促红素注射液", "支", 58.0, "B", variants=2, atc="B03XA",
      ind="N18", dept="A03.06"),
    # --- patent TCM ------------------------------------------------------------------------
    S("lianhua", "patent_tcm", "连花清瘟胶囊", "盒", 15.0, variants=3, atc="ZA01B",
      trace=True),
    S("banlangen", "patent_tcm", "板蓝根颗粒", "盒", 12.0, variants=4, atc="ZA01A"),
    S("huoxiang", "patent_tcm", "藿香正气水", "盒", 8.0, variants=3, atc="ZA05A"),
    S("liuwei", "patent_tcm", "六味地黄丸", "盒", 10.0, variants=4, atc="ZA12D"),
    S("danshen", "patent_tcm", "复方丹参滴丸", "盒", 27.0, variants=3, atc="ZA12E",
      trace=True),
    S("yunnan_baiyao", "patent_tcm", "云南白药气雾剂", "瓶", 35.0, variants=2, atc="ZA06B"),
    S("naoxintong", "patent_tcm", "脑心通胶囊", "盒", 45.0, "B", variants=2, atc="ZA12F",
      ind="I63;I69", trace=True),
    S("angong", "patent_tcm", "安宫牛黄丸", "盒", 380.0, "B", variants=2, atc="ZA03A",
      trace=True, resale=True, high_value=True),
    S("ejiao", "patent_tcm", "阿胶", "盒", 100.0, "B", variants=3, atc="ZA09B", resale=True),
    S("xiyangshen", "patent_tcm", "西洋参含片", "盒", 50.0, "B", variants=2, atc="ZA09C",
      resale=True),
    S("xuesaitong", "patent_tcm", "注射用血栓通(冻干)", "支", 32.0, "B", variants=2,
      atc="ZA12G", care=IP, ind="I63;I69;I25", course=14, qty_day=2),
    S("xiaoer_tuire", "patent_tcm", "小儿退热口服液", "盒", 16.0, variants=2, atc="ZA01C",
      age_max=14 * Y),
    # --- herbal pieces ---------------------------------------------------------------------
    S("huangqi", "herbal_piece", "黄芪(饮片)", "g", 0.12, variants=2),
    S("dangshen", "herbal_piece", "党参(饮片)", "g", 0.28, variants=2),
    S("danggui", "herbal_piece", "当归(饮片)", "g", 0.22, variants=2),
    S("gancao", "herbal_piece", "甘草(饮片)", "g", 0.08, variants=2),
    S("baizhu", "herbal_piece", "白术(饮片)", "g", 0.18, variants=2),
    S("fuling", "herbal_piece", "茯苓(饮片)", "g", 0.10, variants=2),
    S("chuanxiong", "herbal_piece", "川芎(饮片)", "g", 0.15, variants=2),
    S("chenpi", "herbal_piece", "陈皮(饮片)", "g", 0.06, variants=2),
    # --- bed, nursing, consultation ---------------------------------------------------------
    S("bed", "bed", "普通病床费(三人间)", "床日", 50.0, care=IP, qty_day=1),
    S("bed_double", "bed", "普通病床费(双人间)", "床日", 70.0, care=IP, qty_day=1,
      level=2),
    S("nursing1", "nursing", "Ⅰ级护理", "日", 40.0, care=IP, qty_day=1),
    S("nursing2", "nursing", "Ⅱ级护理", "日", 25.0, care=IP, qty_day=1),
    S("consult_op", "consultation", "普通门诊诊查费", "次", 10.0,
      care="11;13;14;51", qty_day=1),
    S("consult_expert", "consultation", "副主任医师门诊诊查费", "次", 25.0,
      care="11;14", level=2, qty_day=1),
    S("consult_er", "consultation", "急诊诊查费", "次", 15.0, care="13", qty_day=1),
    S("consult_ip", "consultation", "住院诊查费", "日", 20.0, care=IP, qty_day=1),
    S("general_fee", "consultation", "一般诊疗费", "次", 10.0, care="11;14", qty_day=1),
    # --- lab ---------------------------------------------------------------------------------
    S("blood_routine", "lab", "血细胞分析(全血细胞计数)", "次", 20.0, replaced=True),
    S("urine_routine", "lab", "尿液分析", "次", 10.0),
    S("liver_fn", "lab", "肝功能检查(8项)", "次", 60.0),
    S("kidney_fn", "lab", "肾功能检查(3项)", "次", 40.0),
    S("glucose_test", "lab", "血清葡萄糖测定", "次", 8.0),
    S("hba1c", "lab", "糖化血红蛋白测定", "次", 60.0, period=(60, 1)),
    S("crp", "lab", "C反应蛋白测定", "次", 25.0),
    S("lipids", "lab", "血脂四项", "次", 45.0),
    S("coag", "lab", "凝血功能检查", "次", 60.0),
    S("cardiac", "lab", "心肌酶谱测定", "次", 80.0),
    S("electrolytes", "lab", "电解质测定", "次", 30.0),
    S("psa", "lab", "前列腺特异性抗原测定", "次", 80.0, sex="1"),
    S("leucorrhea", "lab", "阴道分泌物检查", "次", 15.0, sex="2"),
    S("bilirubin_nb", "lab", "新生儿经皮胆红素测定", "次", 20.0, age_max=28),
    # --- imaging -----------------------------------------------------------------------------
    S("xray_chest", "imaging", "胸部X线摄影(DR)", "次", 60.0),
    S("ct", "imaging", "X线计算机体层(CT)平扫", "部位", 250.0, level=2),
    S("mri", "imaging", "磁共振平扫(MRI)", "部位", 600.0, level=2),
    S("us_abd", "imaging", "腹部彩色多普勒超声", "次", 120.0),
    S("ecg", "imaging", "常规心电图检查", "次", 25.0),
    S("us_gyn", "imaging", "妇科彩色多普勒超声", "次", 150.0, sex="2"),
    S("us_obst", "imaging", "产科彩色多普勒超声", "次", 160.0, sex="2"),
    # --- treatment ---------------------------------------------------------------------------
    S("iv_drip", "treatment", "静脉输液", "组", 10.0, qty_day=4),
    S("nebulize", "treatment", "雾化吸入", "次", 15.0, qty_day=3),
    S("dressing", "treatment", "换药(中)", "次", 20.0, qty_day=2),
    S("acupuncture", "treatment", "普通针刺", "次", 30.0, dept="A50", qty_day=1),
    S("tuina", "treatment", "推拿治疗", "次", 40.0, dept="A50;A21", qty_day=1),
    S("oxygen", "treatment", "氧气吸入", "小时", 5.0, care=IP, qty_day=24),
    S("phototherapy", "treatment", "新生儿蓝光治疗", "小时", 8.0, age_max=28, care=IP,
      dept="A07", qty_day=16),
    S("catheter", "treatment", "导尿", "次", 20.0, qty_day=2),
    S("anaesthesia", "treatment", "全身麻醉", "次", 600.0, level=2, care=IP, qty_day=1),
    S("epidural", "treatment", "椎管内麻醉", "次", 400.0, level=2, care=IP, qty_day=1),
    # --- surgery -----------------------------------------------------------------------------
    S("appendectomy", "surgery", "阑尾切除术", "次", 1200.0, level=2, care=IP, per_stay=1),
    S("lap_chole", "surgery", "腹腔镜下胆囊切除术", "次", 2500.0, level=2, care=IP,
      per_stay=1),
    S("orif_femur", "surgery", "股骨骨折切开复位内固定术", "次", 3000.0, level=2, care=IP,
      per_stay=1),
    S("tka", "surgery", "人工全膝关节置换术", "次", 5200.0, level=3, care=IP, per_stay=1),
    S("pci", "surgery", "经皮冠状动脉支架置入术", "次", 5000.0, level=3, care=IP,
      per_stay=1),
    S("caesarean", "surgery", "剖宫产术", "次", 1800.0, level=2, care="52", sex="2",
      per_stay=1),
    S("delivery", "surgery", "单胎顺产接生", "次", 800.0, care="52", sex="2", per_stay=1),
    S("turp", "surgery", "经尿道前列腺电切术", "次", 2600.0, level=2, care=IP, sex="1",
      ind="N40", per_stay=1),
    S("discectomy", "surgery", "腰椎间盘切除术", "次", 4000.0, level=2, care=IP,
      per_stay=1),
    # --- rehabilitation ----------------------------------------------------------------------
    S("pt", "rehabilitation", "运动疗法", "次", 50.0, dept="A21", qty_day=1),
    S("ot", "rehabilitation", "作业疗法", "次", 40.0, dept="A21", qty_day=1),
    S("rehab_assess", "rehabilitation", "综合康复评定", "次", 80.0, dept="A21",
      per_stay=3, period=(14, 1)),
    S("hemiplegia", "rehabilitation", "偏瘫肢体综合训练", "次", 60.0, dept="A21", qty_day=1),
    S("hand_assess", "rehabilitation", "手功能评定", "次", 30.0, dept="A21", course=90,
      qty_day=1),
    S("injury_rehab", "rehabilitation", "工伤职业康复评定", "次", 120.0, dept="A21",
      ins="410", qty_day=1),
    # --- dialysis ----------------------------------------------------------------------------
    S("haemodialysis", "dialysis", "血液透析", "次", 400.0, dept="A03.06", qty_day=1,
      period=(7, 3), ind="N18"),
    S("haemoperfusion", "dialysis", "血液灌流", "次", 600.0, dept="A03.06", qty_day=1,
      level=2),
    # --- consumables -------------------------------------------------------------------------
    S("iv_set", "consumable", "一次性使用输液器", "套", 3.0, variants=4, replaced=True),
    S("cannula", "consumable", "一次性使用静脉留置针", "支", 15.0, variants=3),
    S("gauze", "consumable", "医用脱脂纱布", "块", 2.0, variants=3),
    S("dialyser", "consumable", "一次性使用血液透析器", "支", 120.0, variants=3,
      dept="A03.06", qty_day=1),
    S("blood_line", "consumable", "一次性使用血液透析管路", "套", 60.0, variants=2,
      dept="A03.06", qty_day=1),
    S("stent", "consumable", "药物洗脱冠脉支架", "个", 6800.0, "B", variants=3, level=3,
      care=IP, high_value=True),
    S("knee_prosthesis", "consumable", "人工膝关节假体", "套", 16500.0, "B", variants=3,
      level=3, care=IP, high_value=True),
    S("bone_plate", "consumable", "接骨板", "块", 2100.0, "B", variants=3, level=2,
      care=IP, high_value=True),
    S("urinary_cath", "consumable", "一次性使用导尿管", "根", 8.0, variants=2),
    S("suture", "consumable", "可吸收缝合线", "根", 45.0, variants=3, care=IP),
)
SPEC_BY_KEY = {s.key: s for s in SPECS}

_SERVICE_PREFIX = {
    "bed": "110900", "nursing": "121100", "consultation": "110200", "lab": "250100",
    "imaging": "210100", "treatment": "120400", "surgery": "330100",
    "rehabilitation": "340200", "dialysis": "311000",
}
_MAKERS = ("", "(华北制药)", "(石药集团)", "(扬子江)", "(齐鲁制药)", "(恒瑞)", "(国药)")
_DRUGS = ("western_drug", "patent_tcm", "herbal_piece")
_CARE_TEXT = {"21;52": "限住院", "52": "限生育住院", "13": "限急诊", "11;13;14;51": "限门诊",
              "11;14": "限门诊"}


def _restriction_text(s: ItemSpec) -> str | None:
    """Render the structured limits as the Chinese memo text the catalogue publishes."""
    parts: list[str] = []
    if s.sex:
        parts.append("限男性" if s.sex == "1" else "限女性")
    if s.age_max is not None:
        parts.append("限新生儿" if s.age_max <= 28 else f"限{s.age_max // Y}岁以下儿童")
    if s.age_min is not None:
        parts.append(f"限{s.age_min // Y}岁及以上")
    if s.level:
        parts.append({2: "限二级及以上医疗机构", 3: "限三级医疗机构"}[s.level])
    if s.care:
        parts.append(_CARE_TEXT.get(s.care, f"限就医类别{s.care}"))
    if s.ins:
        parts.append({"510": "限生育保险", "410": "限工伤保险"}[s.ins])
    if s.ind:
        parts.append(f"限诊断为{s.ind.replace(';', '、')}的患者")
    if s.days_supply:
        parts.append(f"单次处方不超过{s.days_supply}天")
    if s.per_stay:
        parts.append(f"每次住院限{s.per_stay}次")
    if s.period:
        parts.append(f"{s.period[0]}天内限{s.period[1]}次")
    if s.course:
        parts.append(f"限{s.course}天")
    if s.dept:
        parts.append(f"限{s.dept.replace(';', '、')}科室")
    return "；".join(parts) if parts else None


def _code(spec: ItemSpec, serial: int, variant: int) -> str:
    """A national-looking code: drugs 23 chars, services 15 digits, consumables 20 chars."""
    if spec.item_class == "western_drug":
        return f"X{spec.atc}A{serial % 1000:03d}A{variant + 1:03d}{10100000 + serial:09d}"
    if spec.item_class == "patent_tcm":
        return f"Z{spec.atc}A{serial % 1000:03d}A{variant + 1:03d}{20200000 + serial:09d}"
    if spec.item_class == "herbal_piece":
        return f"T{60000000000 + serial * 100 + variant:022d}"
    if spec.item_class == "consumable":
        return f"C{1403000000000 + serial * 1000 + variant:019d}"
    return f"{_SERVICE_PREFIX[spec.item_class]}{serial * 10 + variant:09d}"


def build_catalogue(start: date, switch: date) -> pd.DataFrame:
    """Expand the templates into catalogue rows plus internal helper columns (``_key`` ...).

    Items marked ``replaced`` get a successor code valid from ``switch`` with the same
    restrictions; the old code's ``valid_to`` is the day before.
    """
    rows: list[dict] = []
    valid_from = date(start.year - 3, 1, 1)
    for serial, s in enumerate(SPECS):
        nvar = s.variants + 2 if s.variants > 1 and s.item_class in _DRUGS else s.variants
        for v in range(nvar):
            price = round(s.price * (1.0 + 0.07 * v), 2) if nvar > 1 else s.price
            if s.key in ("ejiao", "xiyangshen", "angong"):
                price = s.price  # round-priced tonics: same price across makers
            is_service = s.item_class not in ("western_drug", "patent_tcm", "herbal_piece",
                                               "consumable")
            row = {
                "item_code": _code(s, serial, v),
                "item_name": s.name + (_MAKERS[v % len(_MAKERS)] if nvar > 1 else ""),
                "item_class": s.item_class,
                "grade": s.grade,
                "unit": s.unit,
                "unit_price": price,
                "price_cap_lv1": round(price * 0.85, 2) if is_service else None,
                "price_cap_lv2": round(price * 0.93, 2) if is_service else None,
                "price_cap_lv3": price if is_service else None,
                "sex_limit": s.sex,
                "age_min_days": s.age_min,
                "age_max_days": s.age_max,
                "min_facility_level": s.level,
                "care_modes": s.care,
                "insurance_types": s.ins,
                "indications": s.ind,
                "max_qty_per_day": s.qty_day,
                "max_days_supply": s.days_supply,
                "max_per_stay": s.per_stay,
                "period_days": s.period[0] if s.period else None,
                "max_per_period": s.period[1] if s.period else None,
                "course_days": s.course,
                "departments": s.dept,
                "drug_group": s.group,
                "trace_required": s.trace,
                "resale_prone": s.resale,
                "high_value": s.high_value,
                "restriction_text": _restriction_text(s),
                "valid_from": valid_from,
                "valid_to": None,
                "_key": s.key,
                "_successor": None,
            }
            if s.replaced and v == 0:
                new = dict(row)
                new["item_code"] = _code(s, serial, 9)
                new["valid_from"] = switch
                row["valid_to"] = switch - timedelta(days=1)
                row["_successor"] = new["item_code"]
                new["_key"] = s.key + "#new"
                rows.append(row)
                rows.append(new)
            else:
                rows.append(row)
    cat = pd.DataFrame(rows)
    for c in ("age_min_days", "age_max_days", "min_facility_level", "max_days_supply",
              "max_per_stay", "period_days", "max_per_period", "course_days"):
        cat[c] = cat[c].astype("Int64")
    cat["max_qty_per_day"] = cat["max_qty_per_day"].astype("Float64")
    assert cat["item_code"].is_unique
    return cat


def variants_of(cat: pd.DataFrame) -> dict[str, np.ndarray]:
    """Catalogue row indices of each template key (successor rows excluded)."""
    out: dict[str, np.ndarray] = {}
    keys = cat["_key"].to_numpy()
    for k in SPEC_BY_KEY:
        out[k] = np.flatnonzero(keys == k)
    return out
